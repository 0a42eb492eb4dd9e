// The `--auto` section of `npm run bench`: FP32 vs full INT8 vs the automatic selection
// ("INT8 only where it pays") at batch 1, one thread, on the OCR classifier and the MNIST CNN.
// Ratios come from the selection's own interleaved timings against FP32.

import { join } from 'node:path';
import { Calibrator, arraySource, selectInt8Nodes, type SampleSource } from '../../src/calibration/index.js';
import { readModel } from '../../src/onnx/index.js';
import { syntheticTextLines } from '../lib/ocr-synthetic.js';
import { loadMnistSplit, IMAGE_SIZE } from '../lib/mnist-data.js';
import { ocrClassifierPath, type BenchRow } from './ocr.js';

async function one(name: string, path: string, calib: SampleSource, validation: SampleSource, log: (s: string) => void): Promise<BenchRow[]> {
  const c = await Calibrator.create(readModel(path), { method: 'percentile' });
  try {
    await c.observeAll(calib);
    const r = await selectInt8Nodes(c.selectionInput(), validation, { sensitivitySamples: 16 });
    const acc = (f: { agreement: number; sqnrDb: number }) => `${(100 * f.agreement).toFixed(1)}%, ${f.sqnrDb.toFixed(1)} dB`;
    log(`auto ${name}: ${r.outcome}, full INT8 ${r.latency.fullInt8Ratio.toFixed(3)}, auto ${r.latency.ratio.toFixed(3)}`);
    return [
      { section: 'auto', name: `${name} full INT8/FP32 median, batch 1, 1 thread`, value: r.latency.fullInt8Ratio, unit: 'ratio', detail: `agreement/SQNR ${acc(r.accuracy.fullInt8)}` },
      {
        section: 'auto',
        name: `${name} auto INT8/FP32 median, batch 1, 1 thread`,
        value: r.latency.ratio,
        unit: 'ratio',
        target: '<= 1.0',
        detail: `${r.outcome}: ${r.int8Nodes} nodes INT8, ${r.exclude.length} left FP32; agreement/SQNR ${acc(r.accuracy.auto)}; fp32 ${r.latency.fp32Ms.toFixed(3)} ms, auto ${r.latency.autoMs.toFixed(3)} ms`,
      },
    ];
  } finally {
    await c.release();
  }
}

export async function autoBench(opts: { log: (s: string) => void }): Promise<BenchRow[]> {
  const cal = syntheticTextLines({ count: 48, seed: 1 });
  const val = syntheticTextLines({ count: 64, seed: 2 });
  const rows = await one('OCR cls', ocrClassifierPath(), arraySource({ x: { data: cal.data, dims: cal.dims } }), arraySource({ x: { data: val.data, dims: val.dims } }), opts.log);
  const { train, test } = loadMnistSplit();
  const mnist = join(import.meta.dirname, '..', '..', 'models', 'mnist-cnn.onnx');
  const images = (x: Float32Array) => arraySource({ input: { data: x.subarray(0, 200 * IMAGE_SIZE), dims: [200, 1, 28, 28] } });
  rows.push(...(await one('MNIST', mnist, images(train.images), images(test.images), opts.log)));
  return rows;
}

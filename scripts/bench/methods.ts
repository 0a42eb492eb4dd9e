// The calibration-method table: accuracy lost against FP32 per method and per number of
// calibration samples, per-tensor vs per-channel weights, and calibration time — measured
// on the bundled MNIST CNN (2,000 held-out test digits with labels).
// Run with `npm run bench -- --methods`.

import { arraySource, calibrate, compareModels, RANGE_METHODS, type CalibrationMethod } from '../../src/calibration/index.js';
import { readModel } from '../../src/onnx/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../lib/mnist-data.js';
import { syntheticTextLines } from '../lib/ocr-synthetic.js';

export interface MethodRow {
  model: string;
  method: CalibrationMethod;
  samples: number;
  perChannel: boolean;
  /** FP32 accuracy minus INT8 accuracy, in points (positive = loss). */
  lossPoints: number;
  agreement: number;
  sqnrDb: number;
  calibrateMs: number;
}

export const SAMPLE_COUNTS = [10, 50, 100, 500, 1000, 5000];

export async function mnistMethodTable(modelPath: string, opts: { quick?: boolean; log?: (s: string) => void } = {}): Promise<MethodRow[]> {
  const fp32 = readModel(modelPath);
  const { train, test } = loadMnistSplit();
  const testSource = arraySource({ input: { data: test.images, dims: [test.count, 1, 28, 28] } });
  const rows: MethodRow[] = [];
  const counts = opts.quick ? [10, 100, 1000] : SAMPLE_COUNTS;
  const methods: CalibrationMethod[] = [...RANGE_METHODS];
  const run = async (method: CalibrationMethod, n: number, perChannel: boolean) => {
    const source = method === 'datafree' ? null : arraySource({ input: { data: train.images.subarray(0, n * IMAGE_SIZE), dims: [n, 1, 28, 28] } });
    const t0 = performance.now();
    const { model } = await calibrate(fp32, source, { method, perChannel });
    const calibrateMs = performance.now() - t0;
    const r = await compareModels(fp32, model, testSource, { labels: test.labels, batchSize: 250 });
    const row: MethodRow = {
      model: 'mnist-cnn',
      method,
      samples: n,
      perChannel,
      lossPoints: 100 * (r.accuracyFp32! - r.accuracyInt8!),
      agreement: r.agreement,
      sqnrDb: r.sqnrDb,
      calibrateMs,
    };
    rows.push(row);
    opts.log?.(`${method} n=${n} ${perChannel ? 'per-channel' : 'per-tensor'}: loss ${row.lossPoints.toFixed(2)} pts, ${calibrateMs.toFixed(0)} ms`);
  };
  for (const method of methods) for (const n of counts) await run(method, n, true);
  for (const method of methods) await run(method, 500, false);
  await run('datafree', 0, true);
  await run('datafree', 0, false);
  return rows;
}

/**
 * The PaddleOCR direction classifier on synthetic text-line crops. There are no real
 * labelled crops in the packages, so the loss is in top-1 agreement with FP32 (points).
 */
export async function ocrMethodTable(modelPath: string, opts: { quick?: boolean; log?: (s: string) => void } = {}): Promise<MethodRow[]> {
  const fp32 = readModel(modelPath);
  const counts = opts.quick ? [10, 100] : [10, 50, 100, 500];
  const pool = syntheticTextLines({ count: Math.max(...counts), seed: 11 });
  const evalSet = syntheticTextLines({ count: 200, seed: 12 });
  const per = 3 * 48 * 192;
  const evalSource = arraySource({ x: { data: evalSet.data, dims: evalSet.dims } });
  const rows: MethodRow[] = [];
  const run = async (method: CalibrationMethod, n: number, perChannel: boolean) => {
    const source = method === 'datafree' ? null : arraySource({ x: { data: pool.data.subarray(0, n * per), dims: [n, 3, 48, 192] } });
    const t0 = performance.now();
    const { model } = await calibrate(fp32, source, { method, perChannel, inputRange: { min: -1, max: 1 }, inputShapes: { x: [3, 48, 192] } });
    const calibrateMs = performance.now() - t0;
    const r = await compareModels(fp32, model, evalSource, { batchSize: 50 });
    rows.push({ model: 'ocr-cls', method, samples: n, perChannel, lossPoints: 100 * (1 - r.agreement), agreement: r.agreement, sqnrDb: r.sqnrDb, calibrateMs });
    opts.log?.(`ocr ${method} n=${n} ${perChannel ? 'per-channel' : 'per-tensor'}: agreement ${(100 * r.agreement).toFixed(1)}%, ${calibrateMs.toFixed(0)} ms`);
  };
  for (const method of RANGE_METHODS) for (const n of counts) await run(method, n, true);
  for (const method of RANGE_METHODS) await run(method, 100, false);
  await run('datafree', 0, true);
  await run('datafree', 0, false);
  return rows;
}

/** Markdown: rows = method, columns = sample counts; cells = accuracy change in points. */
export function methodTableMarkdown(rows: MethodRow[], perTensorAt = 500): string {
  const counts = [...new Set(rows.filter((r) => r.perChannel && r.method !== 'datafree').map((r) => r.samples))].sort((a, b) => a - b);
  const methods = [...new Set(rows.map((r) => r.method))];
  // Accuracy change against FP32: negative is a loss.
  const fmt = (loss: number) => (Math.abs(loss) < 0.005 ? '0.00' : loss > 0 ? `−${loss.toFixed(2)}` : `+${(-loss).toFixed(2)}`);
  let md = `| method (per-channel weights) | N=0 | ${counts.map((n) => `N=${n}`).join(' | ')} | per-tensor weights, N=${perTensorAt} | calibration time, N=${perTensorAt} |\n`;
  md += `|---|---|${counts.map(() => '---').join('|')}|---|---|\n`;
  for (const m of methods) {
    const find = (n: number, pc: boolean) => rows.find((r) => r.method === m && r.samples === n && r.perChannel === pc);
    const n0 = m === 'datafree' ? 0 : perTensorAt;
    const pt = find(n0, false);
    const t = find(n0, true);
    const zero = m === 'datafree' ? fmt(find(0, true)!.lossPoints) : '';
    const cells = counts.map((n) => (m === 'datafree' ? '' : find(n, true) ? fmt(find(n, true)!.lossPoints) : ''));
    md += `| ${m} | ${zero} | ${cells.join(' | ')} | ${pt ? fmt(pt.lossPoints) : ''} | ${t ? `${t.calibrateMs.toFixed(0)} ms` : ''} |\n`;
  }
  return md;
}

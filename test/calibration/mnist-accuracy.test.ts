// The acceptance numbers of the calibration core on real digits: the bundled CNN
// calibrated from 500 training digits, evaluated on the 2,000 held-out test digits.
import { describe, expect, it, beforeAll } from 'vitest';
import { arraySource, calibrate, compareModels, type CalibrationMethod } from '../../src/calibration/index.js';
import { readModel, type ModelProto } from '../../src/onnx/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { paths } from '../helpers/paths.js';

let fp32: ModelProto;
let split: ReturnType<typeof loadMnistSplit>;
beforeAll(() => {
  fp32 = readModel(paths.mnistModel);
  split = loadMnistSplit();
});

async function accuracy(method: CalibrationMethod, perChannel = true) {
  const calib = arraySource({ input: { data: split.train.images.subarray(0, 500 * IMAGE_SIZE), dims: [500, 1, 28, 28] } });
  const { model, profile } = await calibrate(fp32, method === 'datafree' ? null : calib, { method, perChannel });
  const test = arraySource({ input: { data: split.test.images, dims: [split.test.count, 1, 28, 28] } });
  const r = await compareModels(fp32, model, test, { labels: split.test.labels });
  console.log(`${method}${perChannel ? '' : ' per-tensor'}: FP32 ${(100 * r.accuracyFp32!).toFixed(2)}%, INT8 ${(100 * r.accuracyInt8!).toFixed(2)}%, agreement ${(100 * r.agreement).toFixed(2)}%, SQNR ${r.sqnrDb.toFixed(1)} dB`);
  return { ...r, profile };
}

describe('MNIST CNN calibrated from 500 training digits', () => {
  for (const method of ['percentile', 'entropy', 'mse'] as const) {
    it(`${method} (per-channel): INT8 test accuracy within 0.3 points of FP32`, async () => {
      const r = await accuracy(method);
      expect(r.accuracyFp32!).toBeGreaterThanOrEqual(0.97);
      expect(r.accuracyFp32! - r.accuracyInt8!).toBeLessThanOrEqual(0.003);
      expect(r.profile.sampleCount).toBe(500);
    });
  }

  it('minmax stays close as well', async () => {
    const r = await accuracy('minmax');
    expect(r.accuracyFp32! - r.accuracyInt8!).toBeLessThanOrEqual(0.01);
  });

  it('data-free (no samples): within 2 points of FP32', async () => {
    const r = await accuracy('datafree');
    expect(r.accuracyFp32! - r.accuracyInt8!).toBeLessThanOrEqual(0.02);
    expect(r.profile.sampleCount).toBe(0);
  });
});

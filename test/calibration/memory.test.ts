// The memory budget: pure sizing rules, and on the real OCR classifier that a small budget
// changes how the tap runs (smaller batches, tensors in groups) but not one range.
import { describe, expect, it } from 'vitest';
import { Calibrator, arraySource } from '../../src/calibration/index.js';
import { batchSizeFor, defaultMemoryBudgetMB, probeGroups, tensorGroups } from '../../src/calibration/memory.js';
import { readModel } from '../../src/onnx/index.js';
import { syntheticTextLines } from '../../scripts/lib/ocr-synthetic.js';
import { paths } from '../helpers/paths.js';

const MB = 2 ** 20;

describe('memory budget rules', () => {
  it('takes an eighth of RAM, at most 512 MB', () => {
    expect(defaultMemoryBudgetMB(2 * 1024 * MB)).toBe(256);
    expect(defaultMemoryBudgetMB(24 * 1024 * MB)).toBe(512);
    expect(defaultMemoryBudgetMB(64 * MB)).toBe(16);
  });

  it('sizes batches to the budget, at least one sample, at most the cap', () => {
    expect(batchSizeFor(40 * MB, 512 * MB, 32)).toBe(12);
    expect(batchSizeFor(600 * MB, 512 * MB, 32)).toBe(1);
    expect(batchSizeFor(1 * MB, 512 * MB, 32)).toBe(32);
  });

  it('packs tensors in order into groups within the budget', () => {
    const bytes = new Map([['a', 3], ['b', 3], ['c', 5], ['d', 1], ['e', 9]]);
    expect(tensorGroups(bytes, 6)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(tensorGroups(bytes, 100)).toEqual([['a', 'b', 'c', 'd', 'e']]);
    expect(probeGroups(['a', 'b', 'c'], 2)).toEqual([['a', 'b'], ['c']]);
  });
});

describe('calibration inside a memory budget (OCR classifier)', () => {
  it('gives the same ranges with 1 MB as with the default, in tensor groups', async () => {
    const fp32 = readModel(paths.ocrClassifier);
    const lines = syntheticTextLines({ count: 12, seed: 5 });
    const source = () => arraySource({ x: { data: lines.data, dims: lines.dims } });
    const ranges = async (maxMemoryMB?: number) => {
      const c = await Calibrator.create(fp32, { method: 'percentile', ...(maxMemoryMB ? { maxMemoryMB } : {}) });
      try {
        await c.observeAll(source());
        return { ranges: c.ranges(), batchSize: c.batchSize, runs: c.runsPerSample };
      } finally {
        await c.release();
      }
    };
    const roomy = await ranges();
    const tight = await ranges(1);
    // A classifier line's activations (~9 MB fetched) already fill FAST_RUN_BYTES.
    expect(roomy.batchSize).toBe(1);
    expect(tight.batchSize).toBe(1);
    expect(roomy.runs).toBe(1);
    expect(tight.runs).toBeGreaterThan(1);
    expect(tight.ranges).toEqual(roomy.ranges);
  });
});

describe('batches sized for speed', () => {
  it('a small model runs the tap in batches of 32, whatever the method', async () => {
    const fp32 = readModel(paths.mnistModel);
    const data = new Float32Array(40 * 784).map((_, i) => (i % 97) / 97);
    for (const method of ['minmax', 'mse'] as const) {
      const c = await Calibrator.create(fp32, { method });
      try {
        await c.observeAll(arraySource({ input: { data, dims: [40, 1, 28, 28] } }));
        expect(c.batchSize).toBe(32);
      } finally {
        await c.release();
      }
    }
  });
});

// Per-layer analysis on the bundled MNIST CNN with real ORT sessions: every quantized
// compute node is reported, alone and accumulated, and one node alone is never worse at the
// model's output than the whole INT8 model.
import { describe, expect, it } from 'vitest';
import { analyseLayers, arraySource, Calibrator, compareModels, buildVariant } from '../../src/calibration/index.js';
import { readModel } from '../../src/onnx/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { paths } from '../helpers/paths.js';

describe('analyseLayers', () => {
  it('reports isolated and accumulated SQNR for every Conv/Gemm', async () => {
    const { train, test } = loadMnistSplit();
    const c = await Calibrator.create(readModel(paths.mnistModel), { method: 'percentile' });
    try {
      await c.observeAll(arraySource({ input: { data: train.images.subarray(0, 100 * IMAGE_SIZE), dims: [100, 1, 28, 28] } }));
      const input = { prepared: c.prepared, ranges: c.ranges(), options: c.options };
      const report = arraySource({ input: { data: test.images.subarray(0, 64 * IMAGE_SIZE), dims: [64, 1, 28, 28] } });
      const layers = await analyseLayers(input, report);
      const ops = c.prepared.graph!.node.filter((n) => ['Conv', 'Gemm'].includes(n.opType) && c.plan.nodes.includes(n.name));
      expect(layers.map((l) => l.node).sort()).toEqual(ops.map((n) => n.name).sort());
      const full = await compareModels(c.prepared, buildVariant(input, c.plan, []).model, report);
      for (const l of layers) {
        expect(Number.isFinite(l.isolatedTensorDb)).toBe(true);
        expect(l.isolatedOutputDb).toBeGreaterThanOrEqual(full.sqnrDb - 0.5);
        expect(l.accumulatedDb).toBeGreaterThan(10);
      }
      // Sorted worst-alone first.
      for (let i = 1; i < layers.length; i++) expect(layers[i].isolatedOutputDb).toBeGreaterThanOrEqual(layers[i - 1].isolatedOutputDb);
    } finally {
      await c.release();
    }
  }, 60_000);
});

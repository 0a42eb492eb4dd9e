// The real PaddleOCR direction classifier (MobileNetV3, opset 9, input x [N,3,H,W], used at 48×192) through
// every calibration method, on synthetic text lines (no real text images ship with the
// project): 64 to calibrate, 64 others to compare INT8 with FP32.
import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  arraySource, calibrate, compareModels, toFeeds, Calibrator, CollectorSet, CALIBRATION_METHODS, type CalibrationMethod,
} from '../../src/calibration/index.js';
import { GraphIndex, ModelBuilder, onnxOpset, parseModel, readModel, type ModelProto } from '../../src/onnx/index.js';
import { clampRange, planQuantization, saturationInterval } from '../../src/quant/index.js';
import { ActivationTap, createSession, optimizeBasic } from '../../src/runtime/index.js';
import { syntheticTextLines, type TextLineSet } from '../../scripts/lib/ocr-synthetic.js';
import { smallCnn } from '../helpers/models.js';
import { paths } from '../helpers/paths.js';

const OUTPUT = 'softmax_0.tmp_0';
const SHAPE = [3, 48, 192];

let fp32: ModelProto;
let calib: TextLineSet;
let evalSet: TextLineSet;
beforeAll(() => {
  fp32 = readModel(paths.ocrClassifier);
  calib = syntheticTextLines({ count: 64, seed: 1 });
  evalSet = syntheticTextLines({ count: 64, seed: 2 });
});

function countOps(model: ModelProto): Record<string, number> {
  const ops: Record<string, number> = {};
  for (const n of model.graph!.node) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  return ops;
}

/** Loads the model in ORT with full optimisation and returns the op counts of the result. */
async function fusedOps(model: ModelProto): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-ocr-'));
  try {
    const path = join(dir, 'opt.onnx');
    const session = await createSession(model, { optimization: 'all', optimizedModelFilePath: path });
    await session.release();
    return countOps(parseModel(readFileSync(path)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('synthetic text lines', () => {
  it('are seeded, normalised to [-1, 1], and hold both orientations', () => {
    const a = syntheticTextLines({ count: 16, seed: 5 });
    const b = syntheticTextLines({ count: 16, seed: 5 });
    expect(a.dims).toEqual([16, 3, 48, 192]);
    expect(a.data).toEqual(b.data);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of a.data) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBeGreaterThanOrEqual(-1);
    expect(hi).toBeLessThanOrEqual(1);
    expect(hi).toBeGreaterThan(0.4); // light paper
    expect(lo).toBeLessThan(-0.6); // dark ink
    const rotated = a.labels.reduce((s, l) => s + l, 0);
    expect(rotated).toBeGreaterThan(0);
    expect(rotated).toBeLessThan(16);
  });
});

describe('PaddleOCR classifier (opset 9) calibrated from 64 synthetic text lines', () => {
  for (const method of CALIBRATION_METHODS) {
    it(`${method}: the INT8 model loads in ORT, fuses every Conv, and stays comparable to FP32`, async () => {
      const source = method === 'datafree' ? null : arraySource({ x: { data: calib.data, dims: calib.dims } });
      const { model, profile } = await calibrate(fp32, source, {
        method: method as CalibrationMethod,
        ...(method === 'datafree' ? { inputRange: { min: -1, max: 1 }, inputShapes: { x: SHAPE } } : {}),
      });
      expect(profile.qdqDomain).toBe('com.microsoft');
      const qdq = model.graph!.node.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
      expect(qdq.length).toBeGreaterThan(0);
      expect(new Set(qdq.map((n) => n.domain))).toEqual(new Set(['com.microsoft']));
      // ORT's QLinearConv is an opset-10 op: the opset-9 graph is lifted to 10.
      expect(onnxOpset(model)).toBe(10);

      const fused = await fusedOps(model);
      expect(fused.QLinearConv).toBe(53);
      expect(fused.Conv ?? 0).toBe(0);

      const r = await compareModels(fp32, model, arraySource({ x: { data: evalSet.data, dims: evalSet.dims } }), {
        output: OUTPUT,
        labels: evalSet.labels,
      });
      console.log(
        `OCR cls ${method}: agreement ${(100 * r.agreement).toFixed(1)}%, SQNR ${r.sqnrDb.toFixed(1)} dB ` +
          `(synthetic labels: FP32 ${(100 * r.accuracyFp32!).toFixed(1)}%, INT8 ${(100 * r.accuracyInt8!).toFixed(1)}%)`,
      );
      expect(r.samples).toBe(64);
      expect(Number.isFinite(r.agreement)).toBe(true);
      expect(Number.isFinite(r.sqnrDb)).toBe(true);
      // A loose floor: on these images the methods measured 80–92%.
      expect(r.agreement).toBeGreaterThanOrEqual(0.6);
    });
  }

  it('datafree without an input shape names the dynamic input and the inputShapes option', async () => {
    await expect(calibrate(fp32, null, { method: 'datafree', inputRange: { min: -1, max: 1 } })).rejects.toThrow(
      /input 'x' has no static shape/,
    );
    await expect(calibrate(fp32, null, { method: 'datafree', inputRange: { min: -1, max: 1 } })).rejects.toMatchObject({
      hint: expect.stringMatching(/--input-shape x=1x3xNxN .*inputShapes: { x: \[1, 3, N, N\] }/),
    });
  });

  it('datafree rejects an input shape that contradicts the model', async () => {
    await expect(calibrate(fp32, null, { method: 'datafree', inputShapes: { x: [1, 48, 192] } })).rejects.toThrow(
      /\[1, 48, 192\] given for 'x' does not fit the model's \[3, \?, \?\]/,
    );
  });
});

describe('opset-9 models', () => {
  function tinyOpset9(withSlice: boolean): ModelProto {
    const b = new ModelBuilder(9);
    b.input('x', ['N', 1, 8, 8]);
    const c = b.op('Conv', ['x', b.initializer('w', [2, 1, 3, 3], [1, 0, -1, 2, 0, -2, 1, 0, -1, 0.5, 0.5, 0.5, 0, 0, 0, -0.5, -0.5, -0.5]), b.initializer('b', [2], [0.1, -0.1])], {}, 'conv');
    const r = b.op('Relu', [c], {}, 'relu');
    const out = withSlice ? b.op('Slice', [r], { starts: [0], ends: [1], axes: [1] }, 'slice') : r;
    b.node('Identity', [out], {}, { outputs: ['y'], name: 'out' });
    b.output('y');
    return b.build();
  }

  it('without ops that change at opset 10, the INT8 graph is lifted to opset 10 and loads', async () => {
    const prepared = await optimizeBasic(tinyOpset9(false));
    const plan = planQuantization(prepared);
    expect(plan.qdqDomain).toBe('com.microsoft');
    const { model } = await calibrate(tinyOpset9(false), null, { method: 'datafree', inputShapes: { x: [1, 8, 8] } });
    expect(onnxOpset(model)).toBe(10);
    expect((await fusedOps(model)).QLinearConv).toBe(1);
  });

  it('with a Slice (attributes at opset 9, inputs at 10) planning fails with a clear error', async () => {
    const prepared = await optimizeBasic(tinyOpset9(true));
    expect(() => planQuantization(prepared)).toThrow(/needs opset 10, whose Slice differs/);
  });
});

describe('minConvReduction: depthwise and few-input-channel convs stay FP32', () => {
  it('plans by input channels per group × kernel area', async () => {
    // smallCnn: conv1 [8,1,3,3] and the depthwise dwconv [8,1,3,3] reduce over 9 values.
    const prepared = await optimizeBasic(smallCnn());
    expect(planQuantization(prepared, { minConvReduction: 9 }).smallConvs).toEqual([]);
    const plan = planQuantization(prepared, { minConvReduction: 10 });
    expect(plan.smallConvs).toEqual(['conv1', 'dwconv']);
    expect(plan.nodes).toEqual(['fc']);
    expect(plan.weights.map((w) => w.node)).toEqual(['fc']);
  });

  it('on the OCR classifier at 32: the 31 small convs run FP32, the rest fuse, and SQNR does not drop', async () => {
    const source = () => arraySource({ x: { data: calib.data, dims: calib.dims } });
    const evalSource = () => arraySource({ x: { data: evalSet.data, dims: evalSet.dims } });
    const full = await calibrate(fp32, source(), { method: 'percentile' });
    const mixed = await calibrate(fp32, source(), { method: 'percentile', minConvReduction: 32 });
    expect(mixed.plan.smallConvs).toHaveLength(31);
    expect(mixed.profile.excludedNodes).toEqual(mixed.plan.smallConvs);
    expect(mixed.profile.options.minConvReduction).toBe(32);
    const ops = await fusedOps(mixed.model);
    expect(ops.QLinearConv).toBe(53 - 31);
    expect((ops.Conv ?? 0) + (ops.FusedConv ?? 0)).toBe(31);
    const a = await compareModels(fp32, full.model, evalSource());
    const b = await compareModels(fp32, mixed.model, evalSource());
    console.log(`OCR cls percentile, minConvReduction 32: agreement ${(100 * b.agreement).toFixed(1)}%, SQNR ${b.sqnrDb.toFixed(1)} dB (all convs INT8: ${(100 * a.agreement).toFixed(1)}%, ${a.sqnrDb.toFixed(1)} dB)`);
    expect(b.sqnrDb).toBeGreaterThanOrEqual(a.sqnrDb);
    expect(b.agreement).toBeGreaterThanOrEqual(a.agreement);
  });
});

describe('minmax calibration reads extremes computed inside ORT', () => {
  it('gives exactly the ranges of the activation values themselves', async () => {
    const source = arraySource({ x: { data: calib.data, dims: calib.dims } });
    const calibrator = await Calibrator.create(fp32, { method: 'minmax' });
    const full = await ActivationTap.create(calibrator.prepared, calibrator.tensors);
    try {
      const expected = new Map<string, { min: number; max: number }>();
      for await (const batch of source.batches(32)) {
        const outputs = await calibrator.observe(batch);
        expect([...outputs!.keys()]).toEqual([OUTPUT]);
        const { tensors } = await full.run(toFeeds(batch));
        for (const [name, values] of tensors) {
          const r = expected.get(name) ?? { min: Infinity, max: -Infinity };
          for (const v of values) {
            if (v < r.min) r.min = v;
            if (v > r.max) r.max = v;
          }
          expected.set(name, r);
        }
      }
      const ranges = calibrator.ranges();
      // Dead-end Add/Mul outputs are not quantized (qdq.ts), so 90 of the 126 chained tensors remain.
      expect(calibrator.tensors).toHaveLength(90);
      expect([...ranges.keys()].sort()).toEqual([...expected.keys()].sort());
      // Tensors read only by saturating ops are narrowed to where those ops still respond.
      const index = new GraphIndex(calibrator.prepared.graph!);
      let narrowed = 0;
      for (const [name, r] of expected) {
        const bounds = saturationInterval(index, name);
        if (bounds && (r.min < bounds.min || r.max > bounds.max)) narrowed++;
        const want = bounds ? clampRange(r, bounds) : r;
        expect(ranges.get(name)).toEqual({ min: want.min + 0, max: want.max + 0 });
      }
      expect(narrowed).toBeGreaterThan(0);
    } finally {
      await full.release();
      await calibrator.release();
    }
  });

  it('CollectorSet.updateExtremes matches update() for the min/max observer and refuses histograms', () => {
    const batches = [[3, -1, 0.5], [7, 2], [-4, 1, 1]];
    const a = new CollectorSet('minmax');
    const b = new CollectorSet('minmax');
    for (const v of batches) {
      a.update('t', v);
      b.updateExtremes('t', Math.min(...v), Math.max(...v), v.length);
    }
    expect(b.ranges()).toEqual(a.ranges());
    expect(b.get('t')!.samples).toBe(a.get('t')!.samples);
    expect(() => new CollectorSet('entropy').updateExtremes('t', 0, 1, 2)).toThrow(/needs the minmax method/);
  });
});

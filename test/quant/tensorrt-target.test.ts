// The 'tensorrt' target: INT8 models checked against the rules TensorRT's explicit
// quantization sets (quant/target.ts) on the bundled MNIST CNN and the PaddleOCR detector,
// then run in ONNX Runtime's CPU EP against FP32. No GPU here: TensorRT itself is not run.
import { describe, expect, it, beforeAll } from 'vitest';
import { OptionError } from '../../src/common/index.js';
import { arraySource, calibrate, compareModels, type CalibrationResult } from '../../src/calibration/index.js';
import { DataType, GraphIndex, ModelBuilder, attrInt, dimsOf, onnxOpset, readModel, tensorToNumbers, type ModelProto } from '../../src/onnx/index.js';
import { checkTargetOptions, float32Bits, planQuantization, tensorrtCalibrationCache } from '../../src/quant/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { digitPages } from '../../scripts/lib/digit-pages.js';
import { seededRandom } from '../helpers/models.js';
import { paths } from '../helpers/paths.js';
import { thrown } from '../helpers/thrown.js';

const WEIGHTED = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/**
 * Checks every rule and returns what it counted. Rules: opset ≥ 13 and Q/DQ in ai.onnx;
 * every QuantizeLinear int8 with zero-point 0; every weight DequantizeLinear int8, per
 * channel along the axis TensorRT takes, zero-point 0; no int32 (bias) DequantizeLinear;
 * every activation Q → DQ feeding only weighted layers or the residual input of an Add
 * behind one; every activation input of a weighted layer quantized.
 */
function checkTensorrtRules(model: ModelProto) {
  const graph = model.graph!;
  const index = new GraphIndex(graph);
  const init = (name: string) => index.initializers.get(name);
  expect(onnxOpset(model)).toBeGreaterThanOrEqual(13);
  let pairs = 0;
  let weights = 0;
  let residuals = 0;
  for (const q of graph.node.filter((n) => n.opType === 'QuantizeLinear')) {
    expect(q.domain).toBe('');
    const zp = init(q.input[2])!;
    expect(zp.dataType).toBe(DataType.INT8);
    expect([...tensorToNumbers(zp)]).toEqual([0]);
    const dqs = index.consumersOf(q.output[0]);
    expect(dqs.map((d) => d.opType)).toEqual(['DequantizeLinear']);
    for (const reader of index.consumersOf(dqs[0].output[0])) {
      if (WEIGHTED.has(reader.opType)) continue;
      // The residual input of an Add whose other input is a weighted layer's result.
      expect(reader.opType).toBe('Add');
      const other = reader.input.find((t) => t !== dqs[0].output[0])!;
      expect(WEIGHTED.has(index.producer.get(other)?.opType ?? '')).toBe(true);
      residuals++;
    }
    pairs++;
  }
  for (const dq of graph.node.filter((n) => n.opType === 'DequantizeLinear')) {
    expect(dq.domain).toBe('');
    const data = init(dq.input[0]);
    if (!data) continue; // an activation's DQ, checked above
    expect(data.dataType).toBe(DataType.INT8); // never an int32 bias
    const reader = index.consumersOf(dq.output[0])[0];
    expect(WEIGHTED.has(reader.opType)).toBe(true);
    expect(reader.input[1]).toBe(dq.output[0]);
    const dims = dimsOf(data);
    const axis = attrInt(dq, 'axis', -1);
    // Per output channel: Conv's axis 0, Gemm's output column axis; ConvTranspose along
    // axis 0, the input channels, as TensorRT's deconvolution kernels take them.
    const expected = reader.opType === 'Gemm' ? (attrInt(reader, 'transB', 0) ? 0 : 1) : reader.opType === 'MatMul' ? 1 : 0;
    expect(axis).toBe(expected);
    expect(dimsOf(init(dq.input[1])!)).toEqual([dims[axis]]);
    if (reader.opType === 'Conv') expect(dims[axis]).toBe(dims[0]); // output channels
    expect(init(dq.input[2])!.dataType).toBe(DataType.INT8);
    expect(tensorToNumbers(init(dq.input[2])!).every((z) => z === 0)).toBe(true);
    weights++;
  }
  const weighted = graph.node.filter((n) => WEIGHTED.has(n.opType));
  for (const n of weighted) {
    expect(index.producer.get(n.input[0])?.opType).toBe('DequantizeLinear');
    if (n.input[2]) expect(index.producer.has(n.input[2])).toBe(false); // a float bias initializer
  }
  return { pairs, weights, residuals, weighted: weighted.length };
}

describe('target tensorrt on the bundled MNIST CNN (500 training digits, 2,000 test digits)', () => {
  let result: CalibrationResult;
  let split: ReturnType<typeof loadMnistSplit>;
  beforeAll(async () => {
    split = loadMnistSplit();
    const calib = arraySource({ input: { data: split.train.images.subarray(0, 500 * IMAGE_SIZE), dims: [500, 1, 28, 28] } });
    result = await calibrate(readModel(paths.mnistModel), calib, { method: 'mse', target: 'tensorrt', biasCorrection: 'empirical' });
  });

  it('follows TensorRT\'s rules: Q/DQ on the inputs of its 2 convs and 2 Gemms only', () => {
    expect(checkTensorrtRules(result.model)).toEqual({ pairs: 4, weights: 4, residuals: 0, weighted: 4 });
    expect(result.profile.qdqDomain).toBe('ai.onnx');
    expect(result.profile.options.target).toBe('tensorrt');
    for (const t of Object.values(result.profile.tensors)) expect(t).toMatchObject({ zeroPoint: 0, type: 'int8' });
  });

  it('its calibration cache holds the very scales of its Q/DQ nodes', () => {
    const cache = tensorrtCalibrationCache(result.profile);
    for (const e of cache.entries) expect(e.hex).toBe(float32Bits(result.profile.tensors[e.tensor].scale).toString(16));
  });

  it('runs in ORT\'s CPU EP and agrees with FP32 on top-1 for at least 99.5% of the test digits', async () => {
    const test = arraySource({ input: { data: split.test.images, dims: [split.test.count, 1, 28, 28] } });
    const r = await compareModels(readModel(paths.mnistModel), result.model, test, { labels: split.test.labels });
    console.log(`MNIST tensorrt target: agreement ${(100 * r.agreement).toFixed(2)}%, FP32 ${(100 * r.accuracyFp32!).toFixed(2)}%, INT8 ${(100 * r.accuracyInt8!).toFixed(2)}%, SQNR ${r.sqnrDb.toFixed(1)} dB`);
    // Measured: 99.90% (2 of 2,000 digits differ), 39 dB; FP32 98.00%, INT8 97.90%.
    expect(r.agreement).toBeGreaterThanOrEqual(0.995);
    expect(r.accuracyFp32! - r.accuracyInt8!).toBeLessThanOrEqual(0.003);
  });
});

describe('target tensorrt on the PaddleOCR detector (opset 11, 62 convs, 2 transposed convs)', () => {
  it('is lifted to opset 13, follows the rules, runs in ORT and stays close to FP32', async () => {
    const fp32 = readModel(paths.ocrDetector);
    expect(onnxOpset(fp32)).toBe(11);
    const calib = digitPages({ count: 6, seed: 1, split: 'train', size: 320 });
    const test = digitPages({ count: 3, seed: 2, split: 'test', size: 320 });
    const { model, profile } = await calibrate(fp32, arraySource({ x: calib }), { method: 'mse', target: 'tensorrt' });
    const counts = checkTensorrtRules(model);
    expect(counts.weighted).toBe(64);
    expect(counts.weights).toBe(64);
    expect(profile.quantizedNodes).toBe(64);
    const transposed = model.graph!.node.filter((n) => n.opType === 'ConvTranspose');
    expect(transposed).toHaveLength(2);
    const r = await compareModels(fp32, model, arraySource({ x: test }));
    console.log(`detector tensorrt target: ${counts.pairs} Q/DQ pairs, ${counts.residuals} residual inputs; ${r.metric.name} ${r.value.toFixed(4)}, SQNR ${r.sqnrDb.toFixed(1)} dB`);
    // Measured: 19.5 dB, mask IoU 0.979 (the ORT target: 19.6 dB, 0.980). With the CLI's
    // defaults on data/ocr (12 pages to calibrate, 8 others): 19.1 dB, IoU 0.976.
    expect(r.sqnrDb).toBeGreaterThan(17);
    expect(r.value).toBeGreaterThan(0.97);
  });
});

describe('placement rules on small graphs', () => {
  const arr = (n: number, r: () => number) => Array.from({ length: n }, () => r() - 0.5);

  it('quantizes the residual input of an Add fused into the conv before it, and no other Add input', () => {
    const r = seededRandom(3);
    const b = new ModelBuilder(13);
    b.input('x', ['N', 2, 4, 4]);
    const skip = b.op('Sigmoid', ['x'], {}, 'skip');
    const c1 = b.op('Conv', ['x', b.initializer('w1', [2, 2, 1, 1], arr(4, r))], {}, 'c1');
    const sum = b.op('Add', [c1, skip], {}, 'residual');
    const c2 = b.op('Conv', [sum, b.initializer('w2', [2, 2, 1, 1], arr(4, r))], {}, 'c2');
    // c2's result is read twice: TensorRT cannot fuse this Add into c2.
    const twice = b.op('Add', [c2, b.op('Relu', [c2], {}, 'relu')], {}, 'not_fused');
    b.node('Identity', [twice], {}, { outputs: ['y'], name: 'out' });
    b.output('y');
    const plan = planQuantization(b.build(), { target: 'tensorrt' });
    expect(plan.tensors).toEqual(['x', 'skip_out', 'residual_out']);
    expect(plan.nodes).toEqual(['c1', 'c2']);
    expect(plan.qdqDomain).toBe('');
    // The ORT target quantizes results and chained ops instead.
    expect(planQuantization(b.build()).tensors).toContain('c1_out');
  });

  it('refuses a graph below opset 13, uint8 activations and reduce-range', () => {
    const b = new ModelBuilder(11);
    b.input('x', ['N', 2, 4, 4]);
    b.node('Conv', ['x', b.initializer('w', [2, 2, 1, 1], [1, 0, 0, 1])], {}, { outputs: ['y'], name: 'c' });
    b.output('y');
    expect(thrown(OptionError, () => planQuantization(b.build(), { target: 'tensorrt' })).message).toMatch(/^opset 11 model: target tensorrt needs opset 13/);
    thrown(OptionError, () => checkTargetOptions({ target: 'tensorrt', activationType: 'uint8' }));
    thrown(OptionError, () => checkTargetOptions({ target: 'tensorrt', reduceRange: true }));
  });
});

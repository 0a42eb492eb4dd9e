import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, parseModel, type ModelProto } from '../../src/onnx/index.js';
import { planQuantization, quantizeModel, tensorsToCalibrate, type Range, type QuantizeOptions } from '../../src/quant/index.js';
import { ActivationTap, createSession, optimizeBasic, ort } from '../../src/runtime/index.js';
import { branchyMlp, randomInputs, smallCnn } from '../helpers/models.js';

async function minMaxRanges(model: ModelProto, tensors: string[], feeds: Record<string, ort.Tensor>) {
  const tap = await ActivationTap.create(model, tensors);
  const { tensors: values, outputs } = await tap.run(feeds);
  await tap.release();
  const ranges = new Map<string, Range>();
  for (const [name, v] of values) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of v) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    ranges.set(name, { min: lo, max: hi });
  }
  return { ranges, outputs };
}

function sqnr(ref: Float32Array, test: Float32Array): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    s += ref[i] ** 2;
    n += (ref[i] - test[i]) ** 2;
  }
  return 10 * Math.log10(s / n);
}

/** Quantizes, runs in ORT with full optimisation, returns output SQNR and the fused op list. */
async function quantizeAndRun(fp32: ModelProto, feeds: Record<string, ort.Tensor>, opts: QuantizeOptions = {}) {
  const prepared = await optimizeBasic(fp32);
  const plan = planQuantization(prepared, opts);
  const { ranges, outputs } = await minMaxRanges(prepared, tensorsToCalibrate(plan), feeds);
  const { model } = quantizeModel(prepared, plan, ranges, opts);
  const dir = mkdtempSync(join(tmpdir(), 'calibd-qdq-'));
  const optPath = join(dir, 'opt.onnx');
  const session = await createSession(model, { optimization: 'all', optimizedModelFilePath: optPath });
  const out = await session.run(feeds);
  await session.release();
  const name = fp32.graph!.output[0].name;
  const fused = parseModel(readFileSync(optPath)).graph!.node.map((n) => n.opType);
  return { plan, model, fused, sqnrDb: sqnr(outputs.get(name)!.data as Float32Array, out[name].data as Float32Array) };
}

const cnnFeeds = () => ({ input: new ort.Tensor('float32', randomInputs(8, 784), [8, 1, 28, 28]) });

describe('QDQ rewrite', () => {
  it('plans Q/DQ on compute ops, after a sole Relu, and shares parameters through MaxPool/Flatten', async () => {
    const prepared = await optimizeBasic(smallCnn());
    const plan = planQuantization(prepared);
    expect(plan.nodes).toEqual(['conv1', 'pool1', 'dwconv', 'flatten', 'fc']);
    expect(plan.tensors).toEqual(['input', 'relu1_out', 'pool1_out', 'relu2_out', 'flatten_out']);
    expect(tensorsToCalibrate(plan)).toEqual(['input', 'relu1_out', 'relu2_out']);
    expect(plan.sharedWith.get('flatten_out')).toBe('relu2_out');
    expect(plan.weights.map((w) => [w.node, w.axis, w.bias])).toEqual([['conv1', 0, 2], ['dwconv', 0, 2], ['fc', 0, 2]]);
    expect(plan.qdqDomain).toBe('');
  });

  it('ORT fuses the result into integer kernels, with no float Conv or Gemm left', async () => {
    const r = await quantizeAndRun(smallCnn(), cnnFeeds());
    expect(r.fused.filter((op) => op === 'QLinearConv')).toHaveLength(2);
    expect(r.fused).toContain('QGemm');
    expect(r.fused).not.toContain('Conv');
    expect(r.fused).not.toContain('Gemm');
    expect(r.sqnrDb).toBeGreaterThan(30);
  });

  it('int8 asymmetric activations (activationType int8) fuse and keep the resolution of uint8', async () => {
    const u8 = await quantizeAndRun(smallCnn(), cnnFeeds(), { activationType: 'uint8' });
    const s8 = await quantizeAndRun(smallCnn(), cnnFeeds(), { activationType: 'int8' });
    const zeroPointTypes = (m: ModelProto) => new Set(m.graph!.initializer.filter((t) => t.name.endsWith('__zp') && t.dims.length === 0).map((t) => t.dataType));
    expect([...zeroPointTypes(u8.model)]).toEqual([DataType.UINT8]);
    expect([...zeroPointTypes(s8.model)]).toEqual([DataType.INT8]);
    expect(s8.fused.filter((op) => op === 'QLinearConv')).toHaveLength(2);
    expect(s8.fused).toContain('QGemm');
    expect(Math.abs(s8.sqnrDb - u8.sqnrDb)).toBeLessThan(1);
  });

  it('per-tensor weights and symmetric activations also fuse', async () => {
    for (const opts of [{ perChannel: false }, { symmetricActivations: true }]) {
      const r = await quantizeAndRun(smallCnn(), cnnFeeds(), opts);
      expect(r.fused.filter((op) => op === 'QLinearConv')).toHaveLength(2);
      expect(r.fused).toContain('QGemm');
      expect(r.sqnrDb).toBeGreaterThan(25);
    }
  });

  it('excluded nodes (by name or op type) stay FP32', async () => {
    const byName = await quantizeAndRun(smallCnn(), cnnFeeds(), { exclude: ['dwconv'] });
    expect(byName.plan.nodes).not.toContain('dwconv');
    expect(byName.fused.filter((op) => op === 'QLinearConv')).toHaveLength(1);
    const byType = await quantizeAndRun(smallCnn(), cnnFeeds(), { exclude: ['Gemm'] });
    expect(byType.fused).toContain('Gemm');
    expect(byType.fused).not.toContain('QGemm');
  });

  it('models below opset 13 use com.microsoft Q/DQ, which ORT fuses with per-channel weights', async () => {
    const r = await quantizeAndRun(smallCnn(11), cnnFeeds());
    expect(r.plan.qdqDomain).toBe('com.microsoft');
    expect(r.model.opsetImport.some((o) => o.domain === 'com.microsoft')).toBe(true);
    expect(r.fused.filter((op) => op === 'QLinearConv')).toHaveLength(2);
    expect(r.fused).not.toContain('Conv');
    expect(r.sqnrDb).toBeGreaterThan(30);
  });

  it('MatMul B[K,N] per-channel on axis 1; Add and Concat between quantized ops; Gemm transB=0 on axis 1', async () => {
    const feeds = { x: new ort.Tensor('float32', randomInputs(16, 16, 5, -1, 1), [16, 16]) };
    const r = await quantizeAndRun(branchyMlp(), feeds);
    expect(r.plan.nodes).toEqual(['mm1', 'mm2', 'add', 'concat', 'head']);
    expect(r.plan.weights.map((w) => [w.node, w.axis])).toEqual([['mm1', 1], ['mm2', 1], ['head', 1]]);
    expect(r.fused).toContain('QLinearAdd');
    expect(r.fused).toContain('QLinearConcat');
    expect(r.fused).not.toContain('MatMul');
    expect(r.sqnrDb).toBeGreaterThan(30);
  });

  it('a quantized tensor that is also a graph output keeps its name and the producer still fuses', async () => {
    const model = smallCnn();
    // Expose relu1's output as a second graph output.
    const { valueInfo } = await import('../../src/onnx/index.js');
    model.graph!.output.push(valueInfo('relu1_out'));
    const r = await quantizeAndRun(model, cnnFeeds());
    expect(r.model.graph!.output.map((o) => o.name)).toEqual(['logits', 'relu1_out']);
    expect(r.fused).not.toContain('Conv');
  });

  it('throws a clear error when a range is missing', async () => {
    const prepared = await optimizeBasic(smallCnn());
    const plan = planQuantization(prepared);
    expect(() => quantizeModel(prepared, plan, new Map())).toThrow(/no range for tensor 'input'/);
  });
});

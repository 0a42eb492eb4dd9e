// The QDQ rewrite: turns an FP32 graph plus activation ranges into an INT8 graph of
// QuantizeLinear/DequantizeLinear pairs placed where ONNX Runtime fuses them into integer
// kernels (QLinearConv, QGemm, QLinearMatMul, QLinearAdd, …).
//
// Placement follows what ORT's QDQ selectors match (see DESIGN.md field notes):
//  - Conv / Gemm / MatMul: Q/DQ on the activation inputs and on the output; when the
//    output's sole consumer is Relu or Clip, on that node's output instead (ORT then
//    drops the Relu/Clip, as the quantized range already clamps);
//  - weights: int8 symmetric, per output channel, stored quantized behind a DQ;
//    bias: int32 with scale x_scale × w_scale[c];
//  - Add, Mul, Concat, pooling: quantized when every activation input already is;
//  - MaxPool and shape ops (Flatten, Reshape, …) reuse their input's parameters, so ORT
//    can drop the DQ→op→Q around them and run them on uint8 directly.
//
// Planning (which tensors need ranges) is separate from rewriting, so the activation tap
// can expose exactly the planned tensors.

import { create } from '@bufbuild/protobuf';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import { OptionError } from '../common/index.js';
import {
  GraphIndex, DataType, attrInt, cloneModel, dimsOf, makeNode, makeTensor, onnxOpset,
  tensorToNumbers, topologicalOrder, type AttrValue, type ModelProto, type NodeProto,
} from '../onnx/index.js';
import {
  activationParams, fitBiasToInt32, qBounds, quantizeBias, quantizeWeights, weightScales,
  type QuantParams, type Range,
} from './params.js';
import { resolveWeightRange, type WeightRangeChoice } from './weight-range.js';
import { dequantizeWeights, weightShift, type ConvLayout } from './bias-correction.js';

export interface QuantizeOptions {
  /** One weight scale per output channel (default) or one per tensor. */
  perChannel?: boolean;
  /** int8 symmetric activations instead of uint8 asymmetric. */
  symmetricActivations?: boolean;
  /** 7-bit activations and weights (both). */
  reduceRange?: boolean;
  /**
   * Weights in [-63, 63] ('reduced') or [-127, 127] ('full'); 'auto' (default) picks what
   * this CPU's integer kernels can accumulate without saturating (see weight-range.ts).
   */
  weightRange?: WeightRangeChoice;
  /** Node names or op types to leave in FP32. */
  exclude?: string[];
  /**
   * Leave in FP32 every Conv whose reduction per output value, input channels per group ×
   * kernel area, is below this: depthwise and few-input-channel convs (e.g. 1×3×3, 1×5×5)
   * run slower as ORT's QLinearConv than in FP32. 0 (default) quantizes every Conv.
   */
  minConvReduction?: number;
}

/** Ops computed by integer kernels: the reason to quantize at all. */
export const COMPUTE_OPS: ReadonlySet<string> = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops quantized when they sit between quantized tensors, each with its own output range. */
const CHAINED_OPS = new Set(['Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool']);
/** Ops that only move or select values: the output reuses the input's parameters. */
const SHARED_PARAM_OPS = new Set(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);
/** Activations ORT folds into the preceding quantized op when it is the sole consumer. */
const FUSED_ACTIVATIONS = new Set(['Relu', 'Clip']);
/** Ops ORT quantizes by itself when they sit between a DequantizeLinear and a QuantizeLinear. */
const GUARDED_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm']);
/**
 * ORT fuses DQ → Conv/MatMul → Q into ONNX-domain QLinearConv / QLinearMatMul, which exist
 * from opset 10: at opset 9 it builds them anyway and then refuses the graph ("No Op
 * registered for QLinearConv with domain_version of 9"). Opset 10 keeps every opset-9
 * schema except these, so an opset-9 model without them is lifted to 10.
 */
const MIN_FUSED_OPSET = 10;
const CHANGED_AT_OPSET_10 = new Set(['Slice', 'TopK', 'Upsample', 'Dropout']);

export interface QuantizationPlan {
  /** Activation tensors that get a Q/DQ pair, in graph order. */
  tensors: string[];
  /** Tensors that reuse another tensor's parameters (output → input). */
  sharedWith: Map<string, string>;
  /** Nodes computed in INT8. */
  nodes: string[];
  /** Weight inputs to quantize: node name → input index → channel axis (null: per tensor). */
  weights: { node: string; input: number; axis: number | null; bias: number | null }[];
  /** Constant inputs of chained ops (e.g. Add's constant operand), quantized from their values. */
  constants: string[];
  /** Domain of the Q/DQ ops: '' (ONNX, opset ≥ 13) or 'com.microsoft' for older opsets. */
  qdqDomain: string;
  /** Convs left in FP32 by `minConvReduction`. */
  smallConvs: string[];
  /** Compute node → the quantized tensor carrying its result (after a fused Relu/Clip). */
  outputOf: Map<string, string>;
}

function nodeKey(node: NodeProto, i: number): string {
  return node.name || `${node.opType}_${i}`;
}

/**
 * Which tensors get a Q/DQ pair. A chained op (Add, Mul, …) is quantized only where its
 * result goes on to quantized ops: one whose output is read by a float op (HardSwish's
 * inner x + 3, a Mul before a Div) would add a rounding and save no float work, so such
 * dead ends are dropped and the plan redone until none is left.
 */
export function planQuantization(model: ModelProto, options: QuantizeOptions = {}): QuantizationPlan {
  const index = new GraphIndex(model.graph!);
  const keyOf = new Map(topologicalOrder(model.graph!).map((n, i) => [n, nodeKey(n, i)]));
  const skip = new Set<string>();
  for (;;) {
    const { plan, chainedOutputOf } = planOnce(model, index, options, skip);
    const planned = new Set(plan.nodes);
    const deadEnds = [...chainedOutputOf].filter(([, out]) => {
      const readers = index.consumersOf(out);
      return readers.length === 0 || index.graphOutputs.has(out) || readers.some((r) => !planned.has(keyOf.get(r)!));
    });
    if (deadEnds.length === 0) return plan;
    for (const [key] of deadEnds) skip.add(key);
  }
}

function planOnce(model: ModelProto, index: GraphIndex, options: QuantizeOptions, skip: ReadonlySet<string>): { plan: QuantizationPlan; chainedOutputOf: Map<string, string> } {
  const graph = model.graph!;
  const exclude = new Set([...(options.exclude ?? []), ...skip]);
  const perChannel = options.perChannel ?? true;
  const minConvReduction = options.minConvReduction ?? 0;
  const smallConvs: string[] = [];
  const excluded = (n: NodeProto) => exclude.has(n.name) || exclude.has(n.opType);
  const quantized = new Set<string>(); // tensors with a Q/DQ pair
  const sharedWith = new Map<string, string>();
  const nodes: string[] = [];
  const weights: QuantizationPlan['weights'] = [];
  const constants: string[] = [];
  const order: string[] = [];
  const outputOf = new Map<string, string>();
  const chainedOutputOf = new Map<string, string>();
  const add = (t: string) => {
    if (!quantized.has(t)) {
      quantized.add(t);
      order.push(t);
    }
  };
  const isFloatActivation = (t: string) => t !== '' && index.isActivation(t);

  // The output that carries a compute op's result to the next op: after a sole Relu/Clip.
  const quantizedOutput = (node: NodeProto): string => {
    const out = node.output[0];
    const users = index.consumersOf(out);
    if (users.length === 1 && FUSED_ACTIVATIONS.has(users[0].opType) && !index.graphOutputs.has(out) && !excluded(users[0])) {
      return users[0].output[0];
    }
    return out;
  };

  topologicalOrder(graph).forEach((node, i) => {
    if (excluded(node)) return;
    const key = nodeKey(node, i);
    if (COMPUTE_OPS.has(node.opType)) {
      const w = node.input[1];
      const wInit = index.initializers.get(w);
      const activations = node.input.filter((t, k) => k < 2 && isFloatActivation(t));
      if (!wInit && activations.length < 2) return; // weights computed at run time from something else
      if (wInit && wInit.dataType !== DataType.FLOAT) return;
      if (node.opType === 'Conv' && wInit && minConvReduction > 0) {
        // W is [M, C/group, kH, kW, …]: everything after axis 0 is summed per output value.
        const reduction = wInit.dims.slice(1).reduce((a, d) => a * Number(d), 1);
        if (reduction < minConvReduction) {
          smallConvs.push(key);
          return;
        }
      }
      for (const t of activations) add(t);
      if (wInit) {
        const rank = wInit.dims.length;
        let axis: number | null = null;
        if (perChannel) {
          if (node.opType === 'Conv') axis = 0;
          else if (node.opType === 'Gemm') axis = attrInt(node, 'transB', 0) ? 0 : 1;
          else if (rank === 2) axis = 1; // MatMul B[K, N]
        }
        if (node.opType === 'MatMul' && rank !== 2) axis = null;
        const biasIdx = node.opType === 'MatMul' ? null : 2;
        const biasOk = biasIdx !== null && biasQuantizable(node, index, biasIdx, wInit.dims.map(Number), axis);
        weights.push({ node: key, input: 1, axis, bias: biasOk ? biasIdx : null });
      }
      const out = quantizedOutput(node);
      // A Gemm/MatMul whose result leaves the graph keeps a float output: ORT fuses that
      // into QGemm / MatMulIntegerToFloat, and the model's outputs lose no precision.
      const floatOutput = index.graphOutputs.has(out) && index.consumersOf(out).length === 0 && node.opType !== 'Conv';
      if (!floatOutput) {
        add(out);
        outputOf.set(key, out);
      }
      nodes.push(key);
      return;
    }
    const actInputs = node.input.filter(isFloatActivation);
    if (actInputs.length === 0 || !actInputs.every((t) => quantized.has(t))) return;
    if (CHAINED_OPS.has(node.opType)) {
      for (const t of node.input) {
        const c = index.initializers.get(t);
        if (c && c.dataType === DataType.FLOAT && !constants.includes(t)) constants.push(t);
      }
      add(quantizedOutput(node));
      chainedOutputOf.set(key, quantizedOutput(node));
      nodes.push(key);
    } else if (SHARED_PARAM_OPS.has(node.opType)) {
      const out = node.output[0];
      sharedWith.set(out, sharedWith.get(actInputs[0]) ?? actInputs[0]);
      add(out);
      nodes.push(key);
    }
  });

  const opset = onnxOpset(model);
  if (opset < MIN_FUSED_OPSET && nodes.length > 0) {
    const blocker = graph.node.find((n) => (n.domain === '' || n.domain === 'ai.onnx') && CHANGED_AT_OPSET_10.has(n.opType));
    if (blocker) {
      throw new OptionError(`opset ${opset} model: its INT8 graph needs opset ${MIN_FUSED_OPSET}, whose ${blocker.opType} differs from opset ${opset}'s`, {
        value: blocker.name || blocker.opType,
        hint: 'lift it first with liftToOpset10 (prepareModel does; calibd calibrate and serve always do)',
      });
    }
  }
  const plan = {
    tensors: order,
    sharedWith,
    nodes,
    weights,
    constants,
    qdqDomain: opset >= 13 ? '' : 'com.microsoft',
    smallConvs,
    outputOf,
  };
  return { plan, chainedOutputOf };
}

/** Tensors whose ranges the calibration must measure (shared ones borrow their source's). */
export function tensorsToCalibrate(plan: QuantizationPlan): string[] {
  return plan.tensors.filter((t) => !plan.sharedWith.has(t));
}

function biasQuantizable(node: NodeProto, index: GraphIndex, biasIdx: number, wDims: number[], axis: number | null): boolean {
  const b = node.input[biasIdx];
  const init = b ? index.initializers.get(b) : undefined;
  if (!init || init.dataType !== DataType.FLOAT || init.dims.length !== 1) return false;
  if (node.opType === 'Gemm') {
    // int32 bias needs bias scale = x_scale × w_scale, which alpha/beta would change.
    const alpha = node.attribute.find((a) => a.name === 'alpha')?.f ?? 1;
    const beta = node.attribute.find((a) => a.name === 'beta')?.f ?? 1;
    if (alpha !== 1 || beta !== 1) return false;
    const n = attrInt(node, 'transB', 0) ? wDims[0] : wDims[1];
    if (Number(init.dims[0]) !== n) return false;
  }
  void axis;
  return true;
}

/** Statistics beyond ranges that some steps use. */
export interface QuantizeStatistics {
  /**
   * FP32 per-channel means of compute nodes' activation inputs (tensor → channel means):
   * where given, the node's bias is corrected for the shift its quantized weights cause.
   */
  inputMeans?: Map<string, ArrayLike<number>>;
  /** Node → per-channel amount added to its bias (empirical bias correction). */
  biasDeltas?: Map<string, ArrayLike<number>>;
}

/** The bias, less the output shift its quantized weights cause (when the input mean is known). */
function correctedBias(
  node: NodeProto, bias: Float64Array, w: ArrayLike<number>, q: Int8Array, dims: number[], axis: number | null, scales: Float64Array, mean: ArrayLike<number> | undefined,
): Float64Array {
  if (!mean) return bias;
  const layout: ConvLayout = node.opType === 'Gemm'
    ? { kind: 'gemm', dims, transB: attrInt(node, 'transB', 0) === 1 }
    : { kind: 'conv', dims, group: attrInt(node, 'group', 1) };
  const inputs = layout.kind === 'gemm' ? (layout.transB ? dims[1] : dims[0]) : dims[1] * (layout.group ?? 1);
  if (mean.length !== inputs) return bias; // not per input channel: leave the bias as it is
  const shift = weightShift(w, dequantizeWeights(q, dims, axis, scales), layout, mean);
  return bias.map((b, c) => b - shift[c]);
}

export interface QuantizedTensorInfo extends QuantParams {
  range: Range;
}

export interface QuantizeResult {
  model: ModelProto;
  /** Parameters chosen for every quantized activation tensor. */
  params: Map<string, QuantizedTensorInfo>;
  /** Name of the dequantized copy of each quantized activation in the new graph. */
  dequantizedName: (tensor: string) => string;
}

export const dequantizedName = (t: string) => `${t}__dq`;
const quantizedName = (t: string) => `${t}__q`;

/**
 * Applies a plan to a copy of `model`. `ranges` must hold every tensor of
 * `tensorsToCalibrate(plan)`.
 */
export function quantizeModel(model: ModelProto, plan: QuantizationPlan, ranges: Map<string, Range>, options: QuantizeOptions = {}, stats: QuantizeStatistics = {}): QuantizeResult {
  const out = cloneModel(model);
  const graph = out.graph!;
  const index = new GraphIndex(graph);
  const domain = plan.qdqDomain;
  const actOpts = { symmetric: options.symmetricActivations ?? false, reduceRange: options.reduceRange ?? false };
  const actType = actOpts.symmetric ? DataType.INT8 : DataType.UINT8;
  const reducedWeights = resolveWeightRange(options.weightRange, options.reduceRange) === 'reduced';

  const params = new Map<string, QuantizedTensorInfo>();
  const paramsFor = (t: string): QuantizedTensorInfo => {
    const cached = params.get(t);
    if (cached) return cached;
    const source = plan.sharedWith.get(t);
    if (source) {
      const p = paramsFor(source);
      params.set(t, p);
      return p;
    }
    const range = ranges.get(t);
    if (!range) {
      throw new OptionError(`no range for tensor '${t}'`, {
        value: t,
        hint: 'calibrate every tensor listed by tensorsToCalibrate(plan)',
      });
    }
    const p = activationParams(range, actOpts);
    const info = { ...p, scale: Math.fround(p.scale), range };
    params.set(t, info);
    return info;
  };

  const newNodes: NodeProto[] = [];
  const newInits = graph.initializer;
  const renamedOutputs = new Map<string, string>();
  const qdqFor = (t: string): NodeProto[] => {
    const p = paramsFor(t);
    newInits.push(makeTensor(`${t}__scale`, DataType.FLOAT, [], [p.scale]));
    newInits.push(makeTensor(`${t}__zp`, actType, [], [p.zeroPoint]));
    const source = renamedOutputs.get(t) ?? t;
    const pair = [
      makeNode('QuantizeLinear', [source, `${t}__scale`, `${t}__zp`], [quantizedName(t)], `${t}__QuantizeLinear`, {}, domain),
      makeNode('DequantizeLinear', [quantizedName(t), `${t}__scale`, `${t}__zp`], [dequantizedName(t)], `${t}__DequantizeLinear`, {}, domain),
    ];
    if (renamedOutputs.has(t)) pair.push(makeNode('Identity', [dequantizedName(t)], [t], `${t}__Output`));
    return pair;
  };

  // Every consumer of a quantized tensor reads its dequantized copy.
  const quantizedSet = new Set(plan.tensors);
  const fp32Guards = new Map<NodeProto, NodeProto[]>();
  // A Conv/Gemm left FP32 between a DequantizeLinear and a QuantizeLinear is quantized by
  // ORT anyway (its WeightBiasQuantization pass, per-tensor weights, and a Round op that
  // opset-10 graphs cannot load). That pass only takes a per-tensor DQ: such a node reads
  // its own DQ along the channel axis, all channels sharing the tensor's parameters.
  const feedsQuantize = (node: NodeProto): boolean => {
    let out = node.output[0];
    for (;;) {
      if (quantizedSet.has(out)) return true;
      const users = index.consumersOf(out);
      if (users.length !== 1 || !FUSED_ACTIVATIONS.has(users[0].opType)) return false;
      out = users[0].output[0];
    }
  };
  const inputChannels = (node: NodeProto): number | null => {
    const w = index.initializers.get(node.input[1]);
    if (!w) return null;
    if (node.opType === 'Gemm') return Number(attrInt(node, 'transB', 0) ? w.dims[1] : w.dims[0]);
    return node.opType === 'Conv' ? Number(w.dims[1]) * attrInt(node, 'group', 1) : null;
  };
  for (const node of graph.node) {
    const t0 = node.input[0];
    const channels = GUARDED_OPS.has(node.opType) && !plan.nodes.includes(node.name) && quantizedSet.has(t0) && feedsQuantize(node) ? inputChannels(node) : null;
    node.input = node.input.map((t, k) => {
      if (!quantizedSet.has(t)) return t;
      if (k !== 0 || channels === null) return dequantizedName(t);
      const p = paramsFor(t);
      const g = `${dequantizedName(t)}__${node.name}`;
      newInits.push(makeTensor(`${g}__scale`, DataType.FLOAT, [channels], new Array(channels).fill(p.scale)));
      newInits.push(makeTensor(`${g}__zp`, actType, [channels], new Array(channels).fill(p.zeroPoint)));
      fp32Guards.set(node, [makeNode('DequantizeLinear', [quantizedName(t), `${g}__scale`, `${g}__zp`], [g], `${g}__DequantizeLinear`, { axis: 1 }, domain)]);
      return g;
    });
  }

  // A quantized graph output must still be produced under its own name, and its producer
  // must feed only the QuantizeLinear (or ORT will not fuse it): the producer writes
  // `<t>__f` and an Identity after the DequantizeLinear restores the name `<t>`.
  for (const t of plan.tensors) {
    const producer = index.producer.get(t);
    if (!producer || !index.graphOutputs.has(t)) continue;
    producer.output = producer.output.map((o) => (o === t ? `${t}__f` : o));
    renamedOutputs.set(t, `${t}__f`);
  }

  // Weights and biases: replaced by int8/int32 initializers behind a DequantizeLinear.
  const byKey = new Map<string, NodeProto>();
  topologicalOrder(graph).forEach((n, i) => byKey.set(nodeKey(n, i), n));
  const weightNodes: NodeProto[] = [];
  for (const w of plan.weights) {
    const node = byKey.get(w.node);
    if (!node) continue;
    const wName = node.input[w.input];
    const wInit = index.initializers.get(wName)!;
    const dims = dimsOf(wInit);
    const values = tensorToNumbers(wInit);
    const scales = weightScales(values, dims, w.axis, reducedWeights).map(Math.fround);
    const base = `${wName}__${node.name || w.node}`;
    let q = quantizeWeights(values, dims, w.axis, scales);
    if (w.bias !== null) {
      const bName = node.input[w.bias];
      const xName = node.input[0].endsWith('__dq') ? node.input[0].slice(0, -4) : node.input[0];
      const x = paramsFor(xName);
      const bias = correctedBias(node, tensorToNumbers(index.initializers.get(bName)!), values, q, dims, w.axis, scales, stats.inputMeans?.get(xName));
      const delta = stats.biasDeltas?.get(w.node);
      if (delta && delta.length === bias.length) for (let c = 0; c < bias.length; c++) bias[c] += delta[c];
      // A channel whose weights are nearly zero (dead after BN folding) would need a bias
      // beyond int32: its weight scale widens until the bias fits (its weights round to 0).
      if (fitBiasToInt32(bias, x.scale, scales) > 0) q = quantizeWeights(values, dims, w.axis, scales);
      const { values: qb, scales: bScales } = quantizeBias(bias, x.scale, scales);
      newInits.push(makeTensor(`${base}__bq`, DataType.INT32, [qb.length], qb));
      newInits.push(makeTensor(`${base}__bscale`, DataType.FLOAT, [qb.length], bScales.map(Math.fround)));
      newInits.push(makeTensor(`${base}__bzp`, DataType.INT32, [qb.length], new Array(qb.length).fill(0)));
      weightNodes.push(makeNode('DequantizeLinear', [`${base}__bq`, `${base}__bscale`, `${base}__bzp`], [`${base}__bdq`], `${base}__DequantizeBias`, { axis: 0 }, domain));
      node.input[w.bias] = `${base}__bdq`;
    }
    const scaleDims = w.axis === null ? [] : [scales.length];
    newInits.push(makeTensor(`${base}__wq`, DataType.INT8, dims, q));
    newInits.push(makeTensor(`${base}__wscale`, DataType.FLOAT, scaleDims, scales));
    newInits.push(makeTensor(`${base}__wzp`, DataType.INT8, scaleDims, new Array(scales.length).fill(0)));
    const axisAttr: Record<string, AttrValue> = w.axis === null ? {} : { axis: w.axis };
    weightNodes.push(makeNode('DequantizeLinear', [`${base}__wq`, `${base}__wscale`, `${base}__wzp`], [`${base}__wdq`], `${base}__DequantizeWeight`, axisAttr, domain));
    node.input[w.input] = `${base}__wdq`;
  }

  // Constant operands of chained ops (e.g. the 3 in hardswish's x + 3): quantized with
  // parameters from their own values.
  for (const c of plan.constants) {
    const init = index.initializers.get(c)!;
    const values = tensorToNumbers(init);
    let lo = 0;
    let hi = 0;
    for (const v of values) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    ranges.set(c, { min: lo, max: hi });
    // Stored already quantized: only its DequantizeLinear stays in the graph.
    const [, dqNode] = qdqFor(c);
    const p = paramsFor(c);
    const [qmin, qmax] = qBounds(p.type, actOpts.reduceRange);
    const qv = values.map((v) => Math.min(qmax, Math.max(qmin, Math.round(v / p.scale) + p.zeroPoint)));
    newInits.push(makeTensor(quantizedName(c), actType, dimsOf(init), qv));
    weightNodes.push(dqNode);
    for (const node of graph.node) node.input = node.input.map((t) => (t === c ? dequantizedName(c) : t));
  }

  // Insert each activation's Q/DQ right after its producer to keep the graph sorted.
  const pending = new Map<string, NodeProto[]>();
  for (const t of plan.tensors) pending.set(t, qdqFor(t));
  const inputPairs = plan.tensors.filter((t) => !index.producer.has(t)).flatMap((t) => pending.get(t)!);
  newNodes.push(...weightNodes, ...inputPairs);
  for (const node of graph.node) {
    newNodes.push(...(fp32Guards.get(node) ?? []), node);
    for (const o of node.output) {
      const pair = pending.get(o) ?? pending.get(o.endsWith('__f') ? o.slice(0, -3) : '');
      if (pair) newNodes.push(...pair);
    }
  }
  graph.node = newNodes;

  if (domain === 'com.microsoft' && !out.opsetImport.some((o) => o.domain === 'com.microsoft')) {
    out.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n }));
  }
  // planQuantization has checked that nothing in the graph changes meaning at opset 10.
  if (plan.nodes.length > 0 && onnxOpset(out) < MIN_FUSED_OPSET) {
    for (const o of out.opsetImport) if (o.domain === '' || o.domain === 'ai.onnx') o.version = BigInt(MIN_FUSED_OPSET);
  }
  // Unused float weights would double the file; drop initializers nothing reads any more.
  const used = new Set(graph.node.flatMap((n) => n.input));
  for (const o of graph.output) used.add(o.name);
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  graph.input = graph.input.filter((v) => used.has(v.name) || !index.initializers.has(v.name));

  return { model: out, params, dequantizedName };
}

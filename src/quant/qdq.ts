// The QDQ rewrite: turns an FP32 graph plus activation ranges into an INT8 graph of
// QuantizeLinear/DequantizeLinear pairs placed where ONNX Runtime fuses them into integer
// kernels (QLinearConv, QGemm, QLinearMatMul, QLinearAdd, …). Where the pairs go is the
// plan's business (plan.ts and the op rules in ops/); this module writes them, in named
// phases, with every added name taken from naming.ts.
//
// Placement follows what ORT's QDQ selectors match (see docs/ARCHITECTURE.md, field notes):
//  - Conv / Gemm / MatMul: Q/DQ on the activation inputs and on the output; when the
//    output's sole consumer is Relu or Clip, on that node's output instead (ORT then
//    drops the Relu/Clip, as the quantized range already clamps);
//  - weights: int8 symmetric, per output channel, stored quantized behind a DQ;
//    bias: int32 with scale x_scale × w_scale[c];
//  - Add, Mul, Concat, pooling: quantized when every activation input already is;
//  - MaxPool and shape ops (Flatten, Reshape, …) reuse their input's parameters, so ORT
//    can drop the DQ→op→Q around them and run them on uint8 directly.
// For TensorRT (target.ts) the plan holds only the inputs of weighted layers (and residual
// inputs), activations are int8 with zero-point 0, and biases stay float.

import { create } from '@bufbuild/protobuf';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import { OptionError } from '../common/index.js';
import {
  GraphIndex, DataType, attrInt, cloneModel, dimsOf, makeNode, makeTensor, onnxOpset,
  tensorToNumbers, topologicalOrder, type AttrValue, type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from '../onnx/index.js';
import {
  activationParams, fitBiasToInt32, qBounds, quantizeBias, quantizeWeights, weightScales,
  type ActivationQuantOptions, type QuantParams, type Range,
} from './params.js';
import { resolveTargetOptions } from './target.js';
import { dequantizeWeights, weightShift, type ConvLayout } from './bias-correction.js';
import { MIN_FUSED_OPSET, nodeKey, type QuantizationPlan, type QuantizeOptions } from './plan.js';
import { ORT_SELF_QUANTIZED_OPS, QDQ_ABSORBED_ACTIVATIONS, type PlannedWeight } from './ops/index.js';
import { activationNames, dequantizedName, guardNames, renamedGraphOutput, sourceTensor, weightNames } from './naming.js';

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
  // The analytical shift is worked out for Conv and Gemm layouts; ConvTranspose's is another.
  if (!mean || node.opType === 'ConvTranspose') return bias;
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


/**
 * Applies a plan to a copy of `model`. `ranges` must hold every tensor of
 * `tensorsToCalibrate(plan)`; the ranges of quantized constants are added to it.
 */
export function quantizeModel(model: ModelProto, plan: QuantizationPlan, ranges: Map<string, Range>, options: QuantizeOptions = {}, stats: QuantizeStatistics = {}): QuantizeResult {
  const out = cloneModel(model);
  const w = new QdqWriter(out.graph!, plan, ranges, options);
  // The phases run in this order: each adds initializers, and their order is the file's.
  const guards = w.readDequantizedCopies();
  w.keepGraphOutputNames();
  const weightNodes = [...w.quantizeWeights(stats), ...w.quantizeConstants()];
  w.placeNodes(weightNodes, guards);
  liftOpset(out, plan);
  pruneInitializers(out.graph!, w.index);
  return { model: out, params: w.params, dequantizedName };
}

/** The rewrite's shared state: the graph being rewritten and each tensor's parameters. */
class QdqWriter {
  readonly index: GraphIndex;
  readonly params = new Map<string, QuantizedTensorInfo>();
  private readonly act: ActivationQuantOptions & { symmetric: boolean; reduceRange: boolean };
  private readonly actType: DataType;
  private readonly reducedWeights: boolean;
  private readonly tensorrt: boolean;
  private readonly quantized: ReadonlySet<string>;
  /** Quantized graph outputs whose producer now writes `floatOutput(t)`. */
  private readonly renamedOutputs = new Map<string, string>();

  constructor(
    private readonly graph: GraphProto,
    private readonly plan: QuantizationPlan,
    private readonly ranges: Map<string, Range>,
    options: QuantizeOptions,
  ) {
    this.index = new GraphIndex(graph);
    const o = resolveTargetOptions(options);
    this.tensorrt = o.target === 'tensorrt';
    this.act = { symmetric: o.symmetricActivations, zeroPointZero: this.tensorrt, reduceRange: o.reduceRange ?? false, type: o.activationType };
    this.actType = o.activationType === 'int8' ? DataType.INT8 : DataType.UINT8;
    this.reducedWeights = o.weightRange === 'reduced';
    this.quantized = new Set(plan.tensors);
  }

  private addInitializer(t: TensorProto): void {
    this.graph.initializer.push(t);
  }

  /** Scale and zero-point of activation `t` (a shared tensor's are its source's). */
  paramsFor(t: string): QuantizedTensorInfo {
    const cached = this.params.get(t);
    if (cached) return cached;
    const source = this.plan.sharedWith.get(t);
    if (source) {
      const p = this.paramsFor(source);
      this.params.set(t, p);
      return p;
    }
    const range = this.ranges.get(t);
    if (!range) {
      throw new OptionError(`no range for tensor '${t}'`, {
        value: t,
        hint: 'calibrate every tensor listed by tensorsToCalibrate(plan)',
      });
    }
    const p = activationParams(range, this.act);
    const info = { ...p, scale: Math.fround(p.scale), range };
    this.params.set(t, info);
    return info;
  }

  /** The QuantizeLinear/DequantizeLinear pair of `t` (and the Identity restoring a graph output's name). */
  private qdqPair(t: string): NodeProto[] {
    const n = activationNames;
    const p = this.paramsFor(t);
    const domain = this.plan.qdqDomain;
    this.addInitializer(makeTensor(n.scale(t), DataType.FLOAT, [], [p.scale]));
    this.addInitializer(makeTensor(n.zeroPoint(t), this.actType, [], [p.zeroPoint]));
    const source = this.renamedOutputs.get(t) ?? t;
    const pair = [
      makeNode('QuantizeLinear', [source, n.scale(t), n.zeroPoint(t)], [n.quantized(t)], n.quantizeNode(t), {}, domain),
      makeNode('DequantizeLinear', [n.quantized(t), n.scale(t), n.zeroPoint(t)], [n.dequantized(t)], n.dequantizeNode(t), {}, domain),
    ];
    if (this.renamedOutputs.has(t)) pair.push(makeNode('Identity', [n.dequantized(t)], [t], n.outputNode(t)));
    return pair;
  }

  /**
   * Phase 1: every consumer of a quantized tensor reads its dequantized copy (for TensorRT,
   * only the layers the pair is for; the others keep the float tensor). A Conv/Gemm
   * left FP32 between a DequantizeLinear and a QuantizeLinear is quantized by ORT anyway
   * (its WeightBiasQuantization pass, per-tensor weights, and a Round op that opset-10
   * graphs cannot load). That pass only takes a per-tensor DQ: such a node reads its own DQ
   * along the channel axis, all channels sharing the tensor's parameters. Returns those
   * guard DQs by the node they precede.
   */
  readDequantizedCopies(): Map<NodeProto, NodeProto[]> {
    const guards = new Map<NodeProto, NodeProto[]>();
    const readers = this.plan.dequantizedReaders;
    const keyOf = new Map(topologicalOrder(this.graph).map((n, i) => [n, nodeKey(n, i)]));
    for (const node of this.graph.node) {
      if (readers && !readers.has(keyOf.get(node)!)) continue; // reads the float tensor
      const t0 = node.input[0];
      // TensorRT quantizes nothing behind the model's back, and takes per-tensor activations only.
      const guarded = !this.tensorrt && ORT_SELF_QUANTIZED_OPS.has(node.opType) && !this.plan.nodes.includes(node.name) && this.quantized.has(t0) && this.feedsQuantize(node);
      const channels = guarded ? this.inputChannels(node) : null;
      node.input = node.input.map((t, k) => {
        if (!this.quantized.has(t)) return t;
        if (k !== 0 || channels === null) return dequantizedName(t);
        const guard = this.guardFor(t, node, channels);
        guards.set(node, [guard]);
        return guard.output[0];
      });
    }
    return guards;
  }

  private guardFor(t: string, node: NodeProto, channels: number): NodeProto {
    const p = this.paramsFor(t);
    const g = guardNames(t, node.name);
    this.addInitializer(makeTensor(g.scale, DataType.FLOAT, [channels], new Array(channels).fill(p.scale)));
    this.addInitializer(makeTensor(g.zeroPoint, this.actType, [channels], new Array(channels).fill(p.zeroPoint)));
    return makeNode('DequantizeLinear', [activationNames.quantized(t), g.scale, g.zeroPoint], [g.output], g.node, { axis: 1 }, this.plan.qdqDomain);
  }

  /** Whether the node's result reaches a QuantizeLinear, through sole Relu/Clip consumers. */
  private feedsQuantize(node: NodeProto): boolean {
    let out = node.output[0];
    for (;;) {
      if (this.quantized.has(out)) return true;
      const users = this.index.consumersOf(out);
      if (users.length !== 1 || !QDQ_ABSORBED_ACTIVATIONS.has(users[0].opType)) return false;
      out = users[0].output[0];
    }
  }

  private inputChannels(node: NodeProto): number | null {
    const w = this.index.initializers.get(node.input[1]);
    if (!w) return null;
    if (node.opType === 'Gemm') return Number(attrInt(node, 'transB', 0) ? w.dims[1] : w.dims[0]);
    return node.opType === 'Conv' ? Number(w.dims[1]) * attrInt(node, 'group', 1) : null;
  }

  /**
   * Phase 2: a quantized graph output must still be produced under its own name, and its
   * producer must feed only the QuantizeLinear (or ORT will not fuse it): the producer
   * writes `floatOutput(t)` and an Identity after the DequantizeLinear restores `t`.
   */
  keepGraphOutputNames(): void {
    // Where only some readers take the dequantized copy, the graph output keeps the float tensor.
    if (this.plan.dequantizedReaders) return;
    for (const t of this.plan.tensors) {
      const producer = this.index.producer.get(t);
      if (!producer || !this.index.graphOutputs.has(t)) continue;
      const renamed = activationNames.floatOutput(t);
      producer.output = producer.output.map((o) => (o === t ? renamed : o));
      this.renamedOutputs.set(t, renamed);
    }
  }

  /** Phase 3: weights and biases, replaced by int8/int32 initializers behind a DequantizeLinear. */
  quantizeWeights(stats: QuantizeStatistics): NodeProto[] {
    const byKey = new Map<string, NodeProto>();
    topologicalOrder(this.graph).forEach((n, i) => byKey.set(nodeKey(n, i), n));
    const nodes: NodeProto[] = [];
    for (const w of this.plan.weights) {
      const node = byKey.get(w.node);
      if (node) nodes.push(...this.quantizeWeight(node, w, stats));
    }
    return nodes;
  }

  private quantizeWeight(node: NodeProto, w: PlannedWeight, stats: QuantizeStatistics): NodeProto[] {
    const domain = this.plan.qdqDomain;
    const wName = node.input[w.input];
    const wInit = this.index.initializers.get(wName)!;
    const dims = dimsOf(wInit);
    const values = tensorToNumbers(wInit);
    const scales = weightScales(values, dims, w.axis, this.reducedWeights).map(Math.fround);
    const names = weightNames(wName, node.name || w.node);
    const nodes: NodeProto[] = [];
    let q = quantizeWeights(values, dims, w.axis, scales);
    if (w.bias !== null) {
      const bName = node.input[w.bias];
      const xName = sourceTensor(node.input[0]);
      const original = tensorToNumbers(this.index.initializers.get(bName)!);
      const bias = correctedBias(node, original, values, q, dims, w.axis, scales, stats.inputMeans?.get(xName));
      const delta = stats.biasDeltas?.get(w.node);
      const shifted = delta !== undefined && delta.length === bias.length;
      if (shifted) for (let c = 0; c < bias.length; c++) bias[c] += delta[c];
      if (this.tensorrt) {
        // TensorRT takes no int32 DequantizeLinear (target.ts): the bias stays float,
        // a corrected copy when a correction changed it.
        if (bias !== original || shifted) {
          this.addInitializer(makeTensor(names.biasFloat, DataType.FLOAT, [bias.length], bias));
          node.input[w.bias] = names.biasFloat;
        }
      } else {
        const x = this.paramsFor(xName);
        // A channel whose weights are nearly zero (dead after BN folding) would need a bias
        // beyond int32: its weight scale widens until the bias fits (its weights round to 0).
        if (fitBiasToInt32(bias, x.scale, scales) > 0) q = quantizeWeights(values, dims, w.axis, scales);
        const { values: qb, scales: bScales } = quantizeBias(bias, x.scale, scales);
        this.addInitializer(makeTensor(names.biasQuantized, DataType.INT32, [qb.length], qb));
        this.addInitializer(makeTensor(names.biasScale, DataType.FLOAT, [qb.length], bScales.map(Math.fround)));
        this.addInitializer(makeTensor(names.biasZeroPoint, DataType.INT32, [qb.length], new Array(qb.length).fill(0)));
        nodes.push(makeNode('DequantizeLinear', [names.biasQuantized, names.biasScale, names.biasZeroPoint], [names.biasDequantized], names.biasNode, { axis: 0 }, domain));
        node.input[w.bias] = names.biasDequantized;
      }
    }
    const scaleDims = w.axis === null ? [] : [scales.length];
    this.addInitializer(makeTensor(names.quantized, DataType.INT8, dims, q));
    this.addInitializer(makeTensor(names.scale, DataType.FLOAT, scaleDims, scales));
    this.addInitializer(makeTensor(names.zeroPoint, DataType.INT8, scaleDims, new Array(scales.length).fill(0)));
    const axisAttr: Record<string, AttrValue> = w.axis === null ? {} : { axis: w.axis };
    nodes.push(makeNode('DequantizeLinear', [names.quantized, names.scale, names.zeroPoint], [names.dequantized], names.node, axisAttr, domain));
    node.input[w.input] = names.dequantized;
    return nodes;
  }

  /**
   * Phase 4: constant operands of chained ops (e.g. the 3 in hardswish's x + 3), quantized
   * with parameters from their own values and stored already quantized: only their
   * DequantizeLinear stays in the graph.
   */
  quantizeConstants(): NodeProto[] {
    const nodes: NodeProto[] = [];
    for (const c of this.plan.constants) {
      const init = this.index.initializers.get(c)!;
      const values = tensorToNumbers(init);
      let lo = 0;
      let hi = 0;
      for (const v of values) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      this.ranges.set(c, { min: lo, max: hi });
      const [, dqNode] = this.qdqPair(c);
      const p = this.paramsFor(c);
      const [qmin, qmax] = qBounds(p.type, this.act.reduceRange);
      const qv = values.map((v) => Math.min(qmax, Math.max(qmin, Math.round(v / p.scale) + p.zeroPoint)));
      this.addInitializer(makeTensor(activationNames.quantized(c), this.actType, dimsOf(init), qv));
      nodes.push(dqNode);
      for (const node of this.graph.node) node.input = node.input.map((t) => (t === c ? dequantizedName(c) : t));
    }
    return nodes;
  }

  /**
   * Phase 5: the new node list. Weight and constant DQs and the pairs of graph inputs come
   * first; each activation's pair right after its producer, keeping the graph sorted.
   */
  placeNodes(weightNodes: NodeProto[], guards: Map<NodeProto, NodeProto[]>): void {
    const pending = new Map<string, NodeProto[]>();
    for (const t of this.plan.tensors) pending.set(t, this.qdqPair(t));
    const inputPairs = this.plan.tensors.filter((t) => !this.index.producer.has(t)).flatMap((t) => pending.get(t)!);
    const nodes: NodeProto[] = [...weightNodes, ...inputPairs];
    for (const node of this.graph.node) {
      nodes.push(...(guards.get(node) ?? []), node);
      for (const o of node.output) {
        const pair = pending.get(o) ?? pending.get(renamedGraphOutput(o) ?? '');
        if (pair) nodes.push(...pair);
      }
    }
    this.graph.node = nodes;
  }
}

/** Phase 6: the opsets the INT8 graph needs (com.microsoft Q/DQ; opset 10 for the fused ops). */
function liftOpset(out: ModelProto, plan: QuantizationPlan): void {
  if (plan.qdqDomain === 'com.microsoft' && !out.opsetImport.some((o) => o.domain === 'com.microsoft')) {
    out.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n }));
  }
  // planQuantization has checked that nothing in the graph changes meaning at opset 10.
  if (plan.nodes.length > 0 && onnxOpset(out) < MIN_FUSED_OPSET) {
    for (const o of out.opsetImport) if (o.domain === '' || o.domain === 'ai.onnx') o.version = BigInt(MIN_FUSED_OPSET);
  }
}

/** Phase 7: unused float weights would double the file; drop initializers nothing reads any more. */
function pruneInitializers(graph: GraphProto, original: GraphIndex): void {
  const used = new Set(graph.node.flatMap((n) => n.input));
  for (const o of graph.output) used.add(o.name);
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  graph.input = graph.input.filter((v) => used.has(v.name) || !original.initializers.has(v.name));
}

// Planning the QDQ rewrite: which tensors get a Q/DQ pair, which weights are stored int8,
// which nodes run in INT8. Each node is planned by its op's rule from the registry
// (ops/); planning is separate from rewriting so the activation tap can expose exactly the
// planned tensors.

import type { ActivationTypeChoice } from './activation-type.js';
import { OptionError } from '../common/index.js';
import { GraphIndex, QDQ_AXIS_OPSET, onnxOpset, topologicalOrder, type ModelProto, type NodeProto } from '../onnx/index.js';
import { PlanBuilder, ruleFor, type PlannedWeight } from './ops/index.js';
import type { WeightRangeChoice } from './weight-range.js';
import type { QuantTarget } from './target.js';

export interface QuantizeOptions {
  /**
   * The runtime the INT8 model is for (target.ts): 'ort' (default) places Q/DQ where ONNX
   * Runtime fuses them; 'tensorrt' writes TensorRT's explicit quantization (int8 with
   * zero-point 0, Q/DQ on the inputs of weighted layers, float biases, opset 13).
   */
  target?: QuantTarget;
  /** One weight scale per output channel (default) or one per tensor. */
  perChannel?: boolean;
  /** int8 symmetric activations instead of uint8 asymmetric. */
  symmetricActivations?: boolean;
  /** Integer type of asymmetric activations; 'auto' (default): int8 on arm64, uint8 elsewhere (activation-type.ts). */
  activationType?: ActivationTypeChoice;
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

export interface QuantizationPlan {
  /** Activation tensors that get a Q/DQ pair, in graph order. */
  tensors: string[];
  /** Tensors that reuse another tensor's parameters (output → input). */
  sharedWith: Map<string, string>;
  /** Nodes computed in INT8. */
  nodes: string[];
  /** Weight inputs to quantize, with their channel axis and int32 bias input. */
  weights: PlannedWeight[];
  /** Constant inputs of chained ops (e.g. Add's constant operand), quantized from their values. */
  constants: string[];
  /** Domain of the Q/DQ ops: '' (ONNX, opset ≥ 13) or 'com.microsoft' for older opsets. */
  qdqDomain: string;
  /** Convs left in FP32 by `minConvReduction`. */
  smallConvs: string[];
  /** Compute node → the quantized tensor carrying its result (after a fused Relu/Clip). */
  outputOf: Map<string, string>;
  /**
   * Nodes that read a quantized tensor's dequantized copy; the others read the float
   * tensor. null: every reader (ORT). For TensorRT, the weighted layers and residual Adds
   * the pairs are for, as its Q/DQ belong to a layer's inputs.
   */
  dequantizedReaders: ReadonlySet<string> | null;
}

/**
 * ORT fuses DQ → Conv/MatMul → Q into ONNX-domain QLinearConv / QLinearMatMul, which exist
 * from opset 10: at opset 9 it builds them anyway and then refuses the graph ("No Op
 * registered for QLinearConv with domain_version of 9"). Opset 10 keeps every opset-9
 * schema except these, so an opset-9 model without them is lifted to 10.
 */
export const MIN_FUSED_OPSET = 10;
const CHANGED_AT_OPSET_10 = new Set(['Slice', 'TopK', 'Upsample', 'Dropout']);

/** The key a plan knows a node by: its name, or op type and topological position. */
export function nodeKey(node: NodeProto, i: number): string {
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
    const built = planOnce(model, index, options, skip);
    const planned = new Set(built.nodes);
    const deadEnds = [...built.chainedOutputOf].filter(([, out]) => {
      const readers = index.consumersOf(out);
      return readers.length === 0 || index.graphOutputs.has(out) || readers.some((r) => !planned.has(keyOf.get(r)!));
    });
    if (deadEnds.length === 0) return toPlan(built, onnxOpset(model), options.target ?? 'ort');
    for (const [key] of deadEnds) skip.add(key);
  }
}

/** One pass over the graph in topological order, each node planned by its op's rule. */
function planOnce(model: ModelProto, index: GraphIndex, options: QuantizeOptions, skip: ReadonlySet<string>): PlanBuilder {
  const exclude = new Set([...(options.exclude ?? []), ...skip]);
  const isExcluded = (n: NodeProto) => exclude.has(n.name) || exclude.has(n.opType);
  const target = options.target ?? 'ort';
  const plan = new PlanBuilder(index, { perChannel: options.perChannel ?? true, minConvReduction: options.minConvReduction ?? 0, isExcluded, target });
  topologicalOrder(model.graph!).forEach((node, i) => {
    if (!isExcluded(node)) ruleFor(node.opType)?.plan(node, nodeKey(node, i), plan);
  });
  if (plan.nodes.length > 0) {
    if (target === 'tensorrt') checkTensorrtOpset(model);
    else checkOpsetLift(model);
  }
  return plan;
}

/** TensorRT's per-channel weights need DequantizeLinear's axis, which ai.onnx has from opset 13. */
function checkTensorrtOpset(model: ModelProto): void {
  const opset = onnxOpset(model);
  if (opset >= QDQ_AXIS_OPSET) return;
  throw new OptionError(`opset ${opset} model: target tensorrt needs opset ${QDQ_AXIS_OPSET}, the first whose DequantizeLinear takes a per-channel axis`, {
    value: opset,
    hint: "lift it first with liftToOpset13 (prepareModel does with target 'tensorrt'; calibd calibrate --target tensorrt always does)",
  });
}

/** An INT8 graph below opset 10 is lifted to 10: refuse one whose ops change meaning there. */
function checkOpsetLift(model: ModelProto): void {
  const opset = onnxOpset(model);
  if (opset >= MIN_FUSED_OPSET) return;
  const blocker = model.graph!.node.find((n) => (n.domain === '' || n.domain === 'ai.onnx') && CHANGED_AT_OPSET_10.has(n.opType));
  if (blocker) {
    throw new OptionError(`opset ${opset} model: its INT8 graph needs opset ${MIN_FUSED_OPSET}, whose ${blocker.opType} differs from opset ${opset}'s`, {
      value: blocker.name || blocker.opType,
      hint: 'lift it first with liftToOpset10 (prepareModel does; calibd calibrate and serve always do)',
    });
  }
}

function toPlan(built: PlanBuilder, opset: number, target: QuantTarget): QuantizationPlan {
  return {
    tensors: built.tensors,
    sharedWith: built.sharedWith,
    nodes: built.nodes,
    weights: built.weights,
    constants: built.constants,
    qdqDomain: opset >= 13 ? '' : 'com.microsoft',
    smallConvs: built.smallConvs,
    outputOf: built.outputOf,
    dequantizedReaders: target === 'tensorrt' ? new Set([...built.nodes, ...built.residualAdds]) : null,
  };
}

/** Tensors whose ranges the calibration must measure (shared ones borrow their source's). */
export function tensorsToCalibrate(plan: QuantizationPlan): string[] {
  return plan.tensors.filter((t) => !plan.sharedWith.has(t));
}

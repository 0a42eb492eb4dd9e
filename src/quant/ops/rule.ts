// What one op's quantization rule is, and the shared primitives rules are written with.
// A rule looks at one node of the FP32 graph, in topological order, and records in the
// plan what quantizing it takes: activation tensors, weights, constants, shared parameters.

import type { GraphIndex, NodeProto } from '../../onnx/index.js';
import type { QuantTarget } from '../target.js';

/**
 * compute: integer kernels (QLinearConv, QGemm, …), the reason to quantize at all;
 * chained: quantized between quantized tensors, with a range of its own for the output;
 * shared-params: moves or selects values, so its output reuses the input's parameters.
 */
export type OpCategory = 'compute' | 'chained' | 'shared-params';

export interface OpRule {
  readonly category: OpCategory;
  /** Records in `plan` what quantizing `node` takes, or leaves the node FP32. */
  plan(node: NodeProto, key: string, plan: PlanBuilder): void;
}

/** One weight input to quantize. */
export interface PlannedWeight {
  node: string;
  input: number;
  /** Channel axis of a per-channel scale; null: one scale for the tensor. */
  axis: number | null;
  /** Input index of a bias stored as int32, or null. */
  bias: number | null;
}

export interface PlanSettings {
  perChannel: boolean;
  minConvReduction: number;
  isExcluded: (node: NodeProto) => boolean;
  /** The runtime the plan is for: rules place Q/DQ as it wants them (target.ts). */
  target: QuantTarget;
}

/**
 * Activations ORT drops after a quantized op when they are its sole consumer: the quantized
 * range already clamps (ReLU at 0, Clip at its bounds). The Q/DQ pair then goes on their output.
 */
export const QDQ_ABSORBED_ACTIVATIONS: ReadonlySet<string> = new Set(['Relu', 'Clip']);

/**
 * The tensor carrying a node's result on to the next op: the output of a sole Relu/Clip
 * consumer that is not excluded, else the node's own output.
 */
export function resultTensor(index: GraphIndex, node: NodeProto, isExcluded: (n: NodeProto) => boolean = () => false): string {
  const out = node.output[0];
  const users = index.consumersOf(out);
  if (users.length === 1 && QDQ_ABSORBED_ACTIVATIONS.has(users[0].opType) && !index.graphOutputs.has(out) && !isExcluded(users[0])) {
    return users[0].output[0];
  }
  return out;
}

/** The plan under construction, with the primitives op rules share. */
export class PlanBuilder {
  /** Tensors with a Q/DQ pair, in the order they were added. */
  readonly tensors: string[] = [];
  private readonly quantized = new Set<string>();
  readonly sharedWith = new Map<string, string>();
  readonly nodes: string[] = [];
  readonly weights: PlannedWeight[] = [];
  readonly constants: string[] = [];
  readonly smallConvs: string[] = [];
  readonly outputOf = new Map<string, string>();
  /** Results of the weighted layers planned for TensorRT, whose outputs stay float: Add fusion candidates. */
  readonly weightedOutputs = new Set<string>();
  /** Adds whose residual input was quantized for TensorRT: they read its dequantized copy. */
  readonly residualAdds: string[] = [];
  /** Chained node → its quantized output: checked afterwards for dead ends. */
  readonly chainedOutputOf = new Map<string, string>();

  constructor(
    readonly index: GraphIndex,
    readonly settings: PlanSettings,
  ) {}

  /** Gives tensor `t` a Q/DQ pair (once). */
  quantize(t: string): void {
    if (!this.quantized.has(t)) {
      this.quantized.add(t);
      this.tensors.push(t);
    }
  }

  isQuantized(t: string): boolean {
    return this.quantized.has(t);
  }

  /** A float tensor computed at run time (not an initializer, not an absent optional input). */
  isFloatActivation(t: string): boolean {
    return t !== '' && this.index.isActivation(t);
  }

  /** The node's activation inputs, when there is one and every one is already quantized. */
  quantizedInputs(node: NodeProto): string[] | null {
    const inputs = node.input.filter((t) => this.isFloatActivation(t));
    return inputs.length > 0 && inputs.every((t) => this.quantized.has(t)) ? inputs : null;
  }

  resultOf(node: NodeProto): string {
    return resultTensor(this.index, node, this.settings.isExcluded);
  }
}

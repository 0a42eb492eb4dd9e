// The shared shape of a compute op (Conv, Gemm, MatMul, ConvTranspose): activation inputs
// and output get Q/DQ pairs, the weight is stored int8 behind a DequantizeLinear, the bias
// int32 where the op allows it. Each op supplies only what differs: the weight's channel
// axis, which bias input can be int32, and whether it may be left FP32 or keep a float
// graph output. For TensorRT (target.ts) the output gets no pair: TensorRT wants Q/DQ on
// the inputs of weighted layers only, and keeps their results in higher precision.

import { DataType, type GraphIndex, type NodeProto, type TensorProto } from '../../onnx/index.js';
import type { OpRule, PlanBuilder } from './rule.js';
import type { QuantTarget } from '../target.js';

export interface ComputeOp {
  /** Channel axis of the weight (input 1) when scales are per channel; null: per tensor. */
  weightAxis(node: NodeProto, weightDims: number[]): number | null;
  /** Input index of a bias that can be stored int32, or null. */
  int32Bias(node: NodeProto, index: GraphIndex, weightDims: number[]): number | null;
  /** Reason of the op's own to leave it FP32 (a Conv too small to pay). */
  staysFp32?(weight: TensorProto, plan: PlanBuilder): boolean;
  /**
   * A result that leaves the graph may stay float: ORT fuses DQ → Gemm/MatMul into QGemm /
   * MatMulIntegerToFloat, and the model's outputs lose no precision.
   */
  floatGraphOutput: boolean;
  /** The targets that quantize this op (default: every one). */
  targets?: readonly QuantTarget[];
}

/** A 1-D float initializer at `node.input[k]`, the only bias that can become int32. */
export function floatVector(node: NodeProto, index: GraphIndex, k: number): TensorProto | null {
  const name = node.input[k];
  const init = name ? index.initializers.get(name) : undefined;
  return init && init.dataType === DataType.FLOAT && init.dims.length === 1 ? init : null;
}

export function computeRule(op: ComputeOp): OpRule {
  return {
    category: 'compute',
    plan(node, key, plan) {
      const { index } = plan;
      if (op.targets && !op.targets.includes(plan.settings.target)) return;
      const weight = index.initializers.get(node.input[1]);
      const activations = node.input.filter((t, k) => k < 2 && plan.isFloatActivation(t));
      if (!weight && activations.length < 2) return; // weights computed at run time from something else
      if (weight && weight.dataType !== DataType.FLOAT) return;
      if (weight && op.staysFp32?.(weight, plan)) {
        plan.smallConvs.push(key);
        return;
      }
      for (const t of activations) plan.quantize(t);
      if (weight) {
        const dims = weight.dims.map(Number);
        const axis = plan.settings.perChannel ? op.weightAxis(node, dims) : null;
        plan.weights.push({ node: key, input: 1, axis, bias: op.int32Bias(node, index, dims) });
      }
      if (plan.settings.target === 'tensorrt') {
        plan.weightedOutputs.add(node.output[0]);
        plan.nodes.push(key);
        return;
      }
      const out = plan.resultOf(node);
      const floatOutput = op.floatGraphOutput && index.graphOutputs.has(out) && index.consumersOf(out).length === 0;
      if (!floatOutput) {
        plan.quantize(out);
        plan.outputOf.set(key, out);
      }
      plan.nodes.push(key);
    },
  };
}

// Ops quantized only between quantized tensors. Chained ops (Add, Mul, pooling that
// averages) compute new values, so their output gets a range of its own, and a float
// constant operand is quantized from its values. Shared-parameter ops (MaxPool and shape
// ops) only move or select values: the output reuses the input's parameters, so ORT can
// drop the DQ → op → Q around them and run them on uint8 directly.
//
// For TensorRT (target.ts) neither kind gets pairs of its own: TensorRT moves Q/DQ across
// the ops that commute with quantization, and quantizing the others is optional. The one
// exception is its recommendation for residual connections: an Add fused into the weighted
// layer before it runs in INT8 only when its other input is quantized.

import { DataType, type NodeProto } from '../../onnx/index.js';
import type { OpRule, PlanBuilder } from './rule.js';

export const chained: OpRule = {
  category: 'chained',
  plan(node, key, plan) {
    if (plan.settings.target === 'tensorrt') {
      if (node.opType === 'Add') quantizeResidual(node, key, plan);
      return;
    }
    if (!plan.quantizedInputs(node)) return;
    for (const t of node.input) {
      const c = plan.index.initializers.get(t);
      if (c && c.dataType === DataType.FLOAT && !plan.constants.includes(t)) plan.constants.push(t);
    }
    const out = plan.resultOf(node);
    plan.quantize(out);
    plan.chainedOutputOf.set(key, out);
    plan.nodes.push(key);
  },
};

export const sharedParams: OpRule = {
  category: 'shared-params',
  plan(node, key, plan) {
    if (plan.settings.target === 'tensorrt') return;
    const inputs = plan.quantizedInputs(node);
    if (!inputs) return;
    const out = node.output[0];
    plan.sharedWith.set(out, plan.sharedWith.get(inputs[0]) ?? inputs[0]);
    plan.quantize(out);
    plan.nodes.push(key);
  },
};

/**
 * TensorRT fuses an Add into the weighted layer producing one of its inputs when that
 * layer's result goes nowhere else; the other input, the residual, gets a Q/DQ pair so the
 * fused layer can run and write INT8. With both inputs from such layers, the first is
 * the one fused.
 */
function quantizeResidual(node: NodeProto, key: string, plan: PlanBuilder): void {
  const inputs = node.input.filter((t) => plan.isFloatActivation(t));
  if (inputs.length !== 2 || inputs[0] === inputs[1]) return;
  const fused = inputs.findIndex((t) => fusableWeightedOutput(t, node, plan));
  if (fused < 0) return;
  plan.quantize(inputs[1 - fused]);
  plan.residualAdds.push(key);
}

/** `t` is the result of a weighted layer the plan quantizes, read by `add` alone. */
function fusableWeightedOutput(t: string, add: NodeProto, plan: PlanBuilder): boolean {
  const readers = plan.index.consumersOf(t);
  return plan.weightedOutputs.has(t) && readers.length === 1 && readers[0] === add && !plan.index.graphOutputs.has(t);
}

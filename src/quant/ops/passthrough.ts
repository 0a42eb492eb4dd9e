// Ops quantized only between quantized tensors. Chained ops (Add, Mul, pooling that
// averages) compute new values, so their output gets a range of its own, and a float
// constant operand is quantized from its values. Shared-parameter ops (MaxPool and shape
// ops) only move or select values: the output reuses the input's parameters, so ORT can
// drop the DQ → op → Q around them and run them on uint8 directly.

import { DataType } from '../../onnx/index.js';
import type { OpRule } from './rule.js';

export const chained: OpRule = {
  category: 'chained',
  plan(node, key, plan) {
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
    const inputs = plan.quantizedInputs(node);
    if (!inputs) return;
    const out = node.output[0];
    plan.sharedWith.set(out, plan.sharedWith.get(inputs[0]) ?? inputs[0]);
    plan.quantize(out);
    plan.nodes.push(key);
  },
};

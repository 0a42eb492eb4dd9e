// Where a tensor's readers stop caring about its value. HardSwish is 0 for every x ≤ −3,
// HardSigmoid is flat outside [−β/α, (1−β)/α], Relu flat below 0, Clip outside its bounds.
// When every reader of a quantized tensor is such an op, values beyond that interval
// reach the rest of the network exactly as the bound itself would, so the INT8 range only
// needs to cover the interval: the levels a wide negative tail would take go to the values
// that matter. Pre-activation outputs of PP-LCNet/MobileNetV3 convs reach −180 while
// HardSwish only distinguishes values above −3, so this halves their quantization step.

import { GraphIndex, attrFloat, clipBounds, writtenOutHardSwish, type NodeProto } from '../onnx/index.js';
import type { Range } from './params.js';

const UNBOUNDED: Range = { min: -Infinity, max: Infinity };

/** The interval outside which `node` reads `tensor` as if it were the nearest bound; null if none. */
function readerInterval(index: GraphIndex, node: NodeProto, tensor: string): Range | null {
  switch (node.opType) {
    case 'Relu':
      return { min: 0, max: Infinity };
    case 'HardSwish':
      return { min: -3, max: Infinity };
    case 'HardSigmoid': {
      const alpha = attrFloat(node, 'alpha', 0.2);
      const beta = attrFloat(node, 'beta', 0.5);
      if (!(alpha > 0)) return null;
      return { min: -beta / alpha, max: (1 - beta) / alpha };
    }
    case 'Clip':
      return clipBounds(index, node);
    case 'Add':
    case 'Mul':
      return hardSwishHalf(index, node, tensor);
    default:
      return null;
  }
}

/**
 * HardSwish as x · HardSigmoid(x) (calibd's own rewrite, onnx/hardswish.ts), or
 * x·Clip(x + k, 0, m)/m written out as ops (PaddlePaddle's and others' HardSwish export):
 * x feeds Add(x, k) → Clip(0, m) and the Mul with that Clip. Both readers ignore x below −k,
 * where the Clip is 0 and so is the product.
 */
function hardSwishHalf(index: GraphIndex, node: NodeProto, x: string): Range | null {
  // x · HardSigmoid(x): the product is 0 wherever the HardSigmoid is.
  if (node.opType === 'Mul' && node.input.length === 2) {
    const gate = index.producer.get(node.input[node.input[0] === x ? 1 : 0]);
    if (gate?.opType === 'HardSigmoid' && gate.input[0] === x) {
      const lower = readerInterval(index, gate, x);
      return lower ? { min: lower.min, max: Infinity } : null;
    }
  }
  const hs = writtenOutHardSwish(index, x);
  return hs && (node === hs.add || node === hs.mul) ? { min: -hs.k, max: Infinity } : null;
}

/**
 * The interval every reader of `tensor` saturates outside, or null when some reader uses
 * every value (or the tensor is a graph output, which the user reads whole).
 */
export function saturationInterval(index: GraphIndex, tensor: string): Range | null {
  if (index.graphOutputs.has(tensor)) return null;
  const readers = index.consumersOf(tensor);
  if (readers.length === 0) return null;
  let union: Range | null = null;
  for (const node of readers) {
    const r = readerInterval(index, node, tensor);
    if (!r) return null;
    union = union ? { min: Math.min(union.min, r.min), max: Math.max(union.max, r.max) } : r;
  }
  if (!union || (union.min === UNBOUNDED.min && union.max === UNBOUNDED.max)) return null;
  return union;
}

/** Saturation intervals of those of `tensors` that have one. */
export function saturationIntervals(index: GraphIndex, tensors: Iterable<string>): Map<string, Range> {
  const out = new Map<string, Range>();
  for (const t of tensors) {
    const r = saturationInterval(index, t);
    if (r) out.set(t, r);
  }
  return out;
}

/** `range` narrowed to `interval` (never empty: a range wholly outside collapses onto the bound). */
export function clampRange(range: Range, interval: Range): Range {
  const min = Math.min(Math.max(range.min, interval.min), interval.max);
  const max = Math.max(Math.min(range.max, interval.max), interval.min);
  return { min, max };
}

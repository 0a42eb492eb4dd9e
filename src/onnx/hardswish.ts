// Rewrites HardSwish written out as four ops, x · Clip(x + k, 0, m) / m (PaddlePaddle's and
// other exporters' form, k = 3 and m = 6), as HardSigmoid(x; α = 1/m, β = k/m) · x: the same
// function in two passes over the tensor instead of four. HardSigmoid exists from opset 6,
// so models older than HardSwish's opset 14 take it too. Exact in real arithmetic; in float
// the two forms differ by rounding only.

import { GraphIndex, clipBounds, constantValues, makeNode, type NodeProto } from './graph.js';
import { cloneModel, type ModelProto } from './model.js';

function scalar(index: GraphIndex, node: NodeProto, other: string): number | null {
  const k = node.input.find((t) => t !== other);
  const v = k === undefined ? undefined : constantValues(index, k);
  return v && v.length === 1 ? v[0] : null;
}

const sole = (index: GraphIndex, t: string): NodeProto | undefined => {
  const users = index.consumersOf(t);
  return users.length === 1 && !index.graphOutputs.has(t) ? users[0] : undefined;
};

/** The ops of a written-out HardSwish reading x; `div` is null when the product is not divided by m. */
export interface WrittenOutHardSwish {
  add: NodeProto;
  clip: NodeProto;
  mul: NodeProto;
  div: NodeProto | null;
  k: number;
  m: number;
}

/** x · Clip(x + k, 0, m) [/ m] reading the activation `x`, or null. The one matcher of this form. */
export function writtenOutHardSwish(index: GraphIndex, x: string): WrittenOutHardSwish | null {
  const add = index.consumersOf(x).find((n) => n.opType === 'Add' && n.domain === '' && n.input.length === 2);
  const k = add ? scalar(index, add, x) : null;
  const clip = add ? sole(index, add.output[0]) : undefined;
  if (!add || k === null || !(k > 0) || clip?.opType !== 'Clip') return null;
  const range = clipBounds(index, clip);
  const mul = sole(index, clip.output[0]);
  if (!range || range.min !== 0 || !(range.max > 0) || mul?.opType !== 'Mul' || !mul.input.includes(x)) return null;
  const m = range.max;
  const next = sole(index, mul.output[0]);
  const div = next?.opType === 'Div' && next.input[0] === mul.output[0] && scalar(index, next, mul.output[0]) === m ? next : null;
  return { add, clip, mul, div, k, m };
}

/** Replaces every written-out HardSwish; returns the new model and how many were replaced. */
export function fuseHardSwish(model: ModelProto): { model: ModelProto; fused: number } {
  const out = cloneModel(model);
  const graph = out.graph!;
  const index = new GraphIndex(graph);
  const removed = new Set<NodeProto>();
  const added = new Map<NodeProto, NodeProto[]>();
  let fused = 0;
  for (const node of graph.node) {
    if (node.opType !== 'Add' || node.domain !== '' || node.input.length !== 2) continue;
    const x = node.input.find((t) => !index.initializers.has(t) && constantValues(index, t) === undefined);
    const hs = x ? writtenOutHardSwish(index, x) : null;
    if (!x || !hs || hs.add !== node || !hs.div) continue;
    const name = node.name || `hardswish_${fused}`;
    const gate = `${name}__hardsigmoid`;
    added.set(hs.div, [
      makeNode('HardSigmoid', [x], [gate], `${name}__HardSigmoid`, { alpha: { float: 1 / hs.m }, beta: { float: hs.k / hs.m } }),
      makeNode('Mul', [x, gate], [hs.div.output[0]], `${name}__HardSwish`),
    ]);
    for (const n of [hs.add, hs.clip, hs.mul, hs.div]) removed.add(n);
    fused++;
  }
  graph.node = graph.node.flatMap((n) => added.get(n) ?? (removed.has(n) ? [] : [n]));
  const used = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  return { model: out, fused };
}

// Rewrites HardSwish written out as four ops, x · Clip(x + k, 0, m) / m (PaddlePaddle's and
// other exporters' form, k = 3 and m = 6), as HardSigmoid(x; α = 1/m, β = k/m) · x: the same
// function in two passes over the tensor instead of four. HardSigmoid exists from opset 6,
// so models older than HardSwish's opset 14 take it too. Exact in real arithmetic; in float
// the two forms differ by rounding only.

import { DataType, makeTensor } from './tensor.js';
import { GraphIndex, attrFloat, constantValues, makeNode, type NodeProto } from './graph.js';
import { cloneModel, type ModelProto } from './model.js';

function scalar(index: GraphIndex, node: NodeProto, other: string): number | null {
  const k = node.input.find((t) => t !== other);
  const v = k === undefined ? undefined : constantValues(index, k);
  return v && v.length === 1 ? v[0] : null;
}

function clipRange(index: GraphIndex, clip: NodeProto): [number, number] | null {
  if (clip.attribute.some((a) => a.name === 'min' || a.name === 'max')) return [attrFloat(clip, 'min', -Infinity), attrFloat(clip, 'max', Infinity)];
  const lo = clip.input[1] ? constantValues(index, clip.input[1]) : undefined;
  const hi = clip.input[2] ? constantValues(index, clip.input[2]) : undefined;
  return lo?.length === 1 && hi?.length === 1 ? [lo[0], hi[0]] : null;
}

const sole = (index: GraphIndex, t: string): NodeProto | undefined => {
  const users = index.consumersOf(t);
  return users.length === 1 && !index.graphOutputs.has(t) ? users[0] : undefined;
};

/** Replaces every written-out HardSwish; returns the new model and how many were replaced. */
export function fuseHardSwish(model: ModelProto): { model: ModelProto; fused: number } {
  const out = cloneModel(model);
  const graph = out.graph!;
  const index = new GraphIndex(graph);
  const removed = new Set<NodeProto>();
  const added = new Map<NodeProto, NodeProto[]>();
  let fused = 0;
  for (const add of graph.node) {
    if (add.opType !== 'Add' || add.domain !== '' || add.input.length !== 2) continue;
    const x = add.input.find((t) => !index.initializers.has(t) && constantValues(index, t) === undefined);
    if (!x) continue;
    const k = scalar(index, add, x);
    const clip = sole(index, add.output[0]);
    if (k === null || !(k > 0) || clip?.opType !== 'Clip') continue;
    const range = clipRange(index, clip);
    const mul = sole(index, clip.output[0]);
    if (!range || range[0] !== 0 || !(range[1] > 0) || mul?.opType !== 'Mul' || !mul.input.includes(x)) continue;
    const m = range[1];
    const div = sole(index, mul.output[0]);
    const divisor = div?.opType === 'Div' && div.input[0] === mul.output[0] ? scalar(index, div, mul.output[0]) : null;
    if (!div || divisor !== m) continue;
    const name = add.name || `hardswish_${fused}`;
    const hs = `${name}__hardsigmoid`;
    added.set(div, [
      makeNode('HardSigmoid', [x], [hs], `${name}__HardSigmoid`, { alpha: { float: 1 / m }, beta: { float: k / m } }),
      makeNode('Mul', [x, hs], [div.output[0]], `${name}__HardSwish`),
    ]);
    for (const n of [add, clip, mul, div]) removed.add(n);
    fused++;
  }
  graph.node = graph.node.flatMap((n) => added.get(n) ?? (removed.has(n) ? [] : [n]));
  const used = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  return { model: out, fused };
}

// Folds per-channel affine ops that follow a Conv (Mul/Div/Add/Sub by a constant) into the
// Conv's weights and bias. Exports such as PaddlePaddle's write batch norms and learnable
// affine blocks this way, and ORT's own fusions skip the scalar forms. Left in place, each
// op sits between the Conv and whatever reads it, so the INT8 graph quantizes the Conv's
// raw output and then the affine op's output again: two roundings where one will do.
//
// Exact in real arithmetic: a Conv is linear in its weights and bias, so scaling an output
// channel scales that channel's filter and bias, and an added constant adds to the bias.
// The same holds on the input side: a per-channel scale before a Conv folds into the
// filters that read that channel (zero padding stays zero), and an added constant folds
// into the bias when the Conv pads nothing (with padding, border windows would read the
// constant where the original read zeros; there the scale is still moved past the add).

import { DataType, dimsOf, makeTensor, tensorToNumbers, type TensorProto } from './tensor.js';
import { GraphIndex, attrInt, padsNothing, type GraphProto, type NodeProto } from './graph.js';
import { cloneModel, type ModelProto } from './model.js';

type AffineOp = 'Mul' | 'Div' | 'Add' | 'Sub';
const AFFINE_OPS: ReadonlySet<string> = new Set<AffineOp>(['Mul', 'Div', 'Add', 'Sub']);

export interface FoldResult {
  model: ModelProto;
  /** Names of the affine nodes folded away. */
  folded: string[];
}

/**
 * Per-output-channel values of `c` when it broadcasts against a Conv output of rank
 * `rank` with `channels` channels along axis 1 only (a scalar, or [C,1,…], [1,C,1,…]);
 * null when it varies along another axis.
 */
export function channelValues(c: TensorProto, rank: number, channels: number): Float64Array | null {
  const dims = dimsOf(c);
  const values = tensorToNumbers(c);
  if (values.length === 1) return new Float64Array(channels).fill(values[0]);
  if (dims.length > rank) return null;
  const channelAxis = dims.length - rank + 1; // right-aligned broadcasting
  if (channelAxis < 0) return null;
  for (let j = 0; j < dims.length; j++) {
    if (dims[j] !== (j === channelAxis ? channels : 1)) return null;
  }
  return values;
}

/** The affine node reading `conv`'s sole output with a constant, and that constant's values. */
function foldableFollower(index: GraphIndex, conv: NodeProto): { node: NodeProto; values: Float64Array } | null {
  const out = conv.output[0];
  const users = index.consumersOf(out);
  if (users.length !== 1 || index.graphOutputs.has(out)) return null;
  const node = users[0];
  if (!AFFINE_OPS.has(node.opType) || node.input.length !== 2 || node.domain !== '') return null;
  const k = node.input.indexOf(out);
  const other = node.input[1 - k];
  // Sub and Div fold only as x − c and x / c, not c − x or c / x.
  if (k !== 0 && (node.opType === 'Sub' || node.opType === 'Div')) return null;
  const c = index.initializers.get(other);
  const w = index.initializers.get(conv.input[1]);
  if (!c || !w || c.dataType !== DataType.FLOAT || w.dataType !== DataType.FLOAT) return null;
  const values = channelValues(c, w.dims.length, Number(w.dims[0]));
  if (!values) return null;
  if ((node.opType === 'Div' && values.some((v) => v === 0)) || values.some((v) => !Number.isFinite(v))) return null;
  return { node, values };
}

/** New weights and bias of `conv` with `op` by `values` folded in. */
function foldInto(w: TensorProto, bias: Float64Array, op: AffineOp, values: Float64Array): { weights: Float64Array; bias: Float64Array } {
  const weights = tensorToNumbers(w);
  const perChannel = weights.length / values.length;
  const scale = op === 'Mul' ? values : op === 'Div' ? values.map((v) => 1 / v) : null;
  if (scale) {
    for (let c = 0; c < values.length; c++) {
      for (let i = c * perChannel; i < (c + 1) * perChannel; i++) weights[i] *= scale[c];
    }
    return { weights, bias: bias.map((b, c) => b * scale[c]) };
  }
  const sign = op === 'Add' ? 1 : -1;
  return { weights, bias: bias.map((b, c) => b + sign * values[c]) };
}

/**
 * Applies `step` to Convs until none changes: each successful step rewrites one Conv (and
 * removes what it folded), after which the index is rebuilt. Unused initializers go last.
 */
function foldToFixpoint(model: ModelProto, step: (graph: GraphProto, index: GraphIndex, conv: NodeProto, tag: string) => NodeProto[] | null): FoldResult {
  const out = cloneModel(model);
  const graph = out.graph!;
  const folded: string[] = [];
  let serial = 0;
  for (let changed = true; changed; ) {
    changed = false;
    const index = new GraphIndex(graph);
    for (const conv of graph.node) {
      if (conv.opType !== 'Conv' || conv.domain !== '') continue;
      const removed = step(graph, index, conv, `__folded${serial}`);
      if (!removed) continue;
      serial++;
      graph.node = graph.node.filter((n) => !removed.includes(n));
      folded.push(...removed.map((n) => n.name || n.opType));
      changed = true;
      break; // the index is stale now
    }
  }
  const used = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  graph.input = graph.input.filter((v) => used.has(v.name) || !model.graph!.initializer.some((t) => t.name === v.name));
  return { model: out, folded };
}

/** Gives `conv` new weights and bias initializers. */
function setWeights(graph: GraphProto, conv: NodeProto, input: string, w: TensorProto, weights: Float64Array, bias: Float64Array, tag: string): void {
  graph.initializer.push(makeTensor(`${w.name}${tag}`, DataType.FLOAT, dimsOf(w), weights));
  graph.initializer.push(makeTensor(`${conv.name || w.name}__bias${tag}`, DataType.FLOAT, [bias.length], bias));
  conv.input = [input, `${w.name}${tag}`, `${conv.name || w.name}__bias${tag}`];
}

/** Folds every Conv → affine-by-constant chain; returns a new model and what was folded. */
export function foldConvAffine(model: ModelProto): FoldResult {
  return foldToFixpoint(model, (graph, index, conv, tag) => {
    const follower = foldableFollower(index, conv);
    if (!follower) return null;
    const w = index.initializers.get(conv.input[1])!;
    const b = conv.input[2] ? index.initializers.get(conv.input[2]) : undefined;
    if (conv.input[2] && !b) return null; // a bias computed at run time
    const bias = b ? tensorToNumbers(b) : new Float64Array(Number(w.dims[0]));
    const next = foldInto(w, bias, follower.node.opType as AffineOp, follower.values);
    setWeights(graph, conv, conv.input[0], w, next.weights, next.bias, tag);
    conv.output = [follower.node.output[0]];
    return [follower.node];
  });
}

/** Per-input-channel constant of a Mul/Add that feeds only `conv`, or null. */
function inputAffine(index: GraphIndex, node: NodeProto | undefined, conv: NodeProto): { node: NodeProto; x: string; values: Float64Array } | null {
  if (!node || (node.opType !== 'Mul' && node.opType !== 'Add') || node.domain !== '' || node.input.length !== 2) return null;
  const out = node.output[0];
  if (index.consumersOf(out).length !== 1 || index.graphOutputs.has(out)) return null;
  const k = index.initializers.has(node.input[1]) ? 1 : index.initializers.has(node.input[0]) ? 0 : -1;
  if (k < 0 || index.initializers.has(node.input[1 - k])) return null;
  const c = index.initializers.get(node.input[k])!;
  const w = index.initializers.get(conv.input[1]);
  if (!w || c.dataType !== DataType.FLOAT || w.dataType !== DataType.FLOAT) return null;
  const inputs = Number(w.dims[1]) * attrInt(conv, 'group', 1);
  const values = channelValues(c, w.dims.length, inputs);
  if (!values || values.some((v) => !Number.isFinite(v))) return null;
  return { node, x: node.input[1 - k], values };
}

/** Calls f(flat index, output channel, input channel) for every weight of a Conv [M, C/group, k…]. */
export function forEachConvWeight(dims: readonly number[], group: number, f: (k: number, o: number, i: number) => void): void {
  const [out, inPerGroup] = dims;
  const kernel = dims.slice(2).reduce((a, b) => a * b, 1);
  const outPerGroup = out / group;
  for (let o = 0; o < out; o++) {
    const g = Math.floor(o / outPerGroup);
    for (let j = 0; j < inPerGroup; j++) {
      const base = (o * inPerGroup + j) * kernel;
      for (let k = 0; k < kernel; k++) f(base + k, o, g * inPerGroup + j);
    }
  }
}

/**
 * Folds Mul/Add by per-channel constants that feed a Conv into that Conv (see the header).
 * Mul → Add → padded Conv becomes Add(d / c) → Conv with the scale in the filters.
 */
export function foldAffineIntoConv(model: ModelProto): FoldResult {
  return foldToFixpoint(model, (graph, index, conv, tag) => {
    const w = index.initializers.get(conv.input[1]);
    if (!w || w.dataType !== DataType.FLOAT || (conv.input[2] && !index.initializers.get(conv.input[2]))) return null;
    const first = inputAffine(index, index.producer.get(conv.input[0]), conv);
    if (!first) return null;
    const dims = dimsOf(w);
    const group = attrInt(conv, 'group', 1);
    const weights = tensorToNumbers(w);
    const bias = conv.input[2] ? tensorToNumbers(index.initializers.get(conv.input[2])!) : new Float64Array(dims[0]);
    if (first.node.opType === 'Mul') {
      forEachConvWeight(dims, group, (k, _o, i) => { weights[k] *= first.values[i]; });
      setWeights(graph, conv, first.x, w, weights, bias, tag);
      return [first.node];
    }
    if (padsNothing(conv)) {
      forEachConvWeight(dims, group, (k, o, i) => { bias[o] += weights[k] * first.values[i]; });
      setWeights(graph, conv, first.x, w, weights, bias, tag);
      return [first.node];
    }
    // Add right before a padded Conv: move a Mul before it past the Add, if there is one.
    const mul = inputAffine(index, index.producer.get(first.x), { ...conv, input: [first.x, conv.input[1]] } as NodeProto);
    if (!mul || mul.node.opType !== 'Mul' || mul.values.some((v) => v === 0)) return null;
    forEachConvWeight(dims, group, (k, _o, i) => { weights[k] *= mul.values[i]; });
    const shifted = first.values.map((d, i) => d / mul.values[i]);
    const dName = `${first.node.name || 'add'}__shift${tag}`;
    graph.initializer.push(makeTensor(dName, DataType.FLOAT, [1, shifted.length, ...dims.slice(2).map(() => 1)], shifted));
    first.node.input = [mul.x, dName];
    setWeights(graph, conv, first.node.output[0], w, weights, bias, tag);
    return [mul.node];
  });
}

// Cross-layer equalization: rescales (and, where exact, re-centres) the channels of a
// tensor that one Conv writes and the next Conv reads, so that every channel spans about
// the same range. INT8 gives an activation tensor one scale for all its channels; when a
// few channels are 10–50× wider than the rest (common in MobileNetV3/PP-LCNet blocks),
// the narrow ones keep only a handful of levels. Nagel et al., "Data-Free Quantization
// Through Weight Equalization and Bias Correction" (2019), §4.
//
// For a pair Conv1 → [Relu] → Conv2 and channel i of the tensor T between them:
//   T_i ← T_i / s_i      (Conv1's filter and bias for channel i divided by s_i)
//   Conv2 reads s_i·T_i  (Conv2's weights for input channel i multiplied by s_i)
// which is exact because Conv is linear and Relu(x/s) = Relu(x)/s for s > 0. Where nothing
// sits between the two and Conv2 pads nothing, T_i is also shifted by −d_i, with Conv2's
// bias taking back W2·d_i (exact: without padding every window reads real values).
//
// s_i balances the channel's activation range a_i against Conv2's largest weight for it
// w_i: s_i = √(a_i / w_i), so both end up at √(a_i·w_i) (the split SmoothQuant calls
// α = ½). With measured per-channel ranges a_i is the activation's; without data it is
// Conv1's largest weight for the channel, as in the paper.

import {
  DataType, GraphIndex, attrInt, cloneModel, dimsOf, makeTensor, padsNothing, tensorToNumbers,
  type ModelProto, type NodeProto, type TensorProto,
} from '../onnx/index.js';

/** none; from weights alone (data-free); from the activations' measured channel ranges. */
export const EQUALIZATIONS = ['none', 'weights', 'activations'] as const;
export type Equalization = (typeof EQUALIZATIONS)[number];

export interface EqualizationPair {
  /** Conv writing the tensor. */
  producer: string;
  /** Conv reading it. */
  consumer: string;
  /** The tensor Conv2 reads (after the Relu, when there is one). */
  tensor: string;
  /** Nothing nonlinear between, and Conv2 pads nothing: channels may be re-centred too. */
  shiftable: boolean;
}

/** Per-channel extremes of a tensor over the samples (axis 1 of N×C×…). */
export interface ChannelRange {
  min: ArrayLike<number>;
  max: ArrayLike<number>;
}

export interface EqualizeResult {
  model: ModelProto;
  pairs: EqualizationPair[];
}

const SCALE_LIMIT = 1e4;

function isPlainConv(node: NodeProto | undefined, index: GraphIndex): node is NodeProto {
  if (!node || node.opType !== 'Conv' || node.domain !== '') return false;
  const w = index.initializers.get(node.input[1]);
  const b = node.input[2] ? index.initializers.get(node.input[2]) : undefined;
  return !!w && w.dataType === DataType.FLOAT && (!node.input[2] || (!!b && b.dataType === DataType.FLOAT));
}

/** Conv → [Relu] → Conv chains whose middle tensor has no other reader. */
export function findEqualizationPairs(model: ModelProto): EqualizationPair[] {
  const index = new GraphIndex(model.graph!);
  const soleUser = (t: string): NodeProto | undefined => {
    const users = index.consumersOf(t);
    return users.length === 1 && !index.graphOutputs.has(t) ? users[0] : undefined;
  };
  const pairs: EqualizationPair[] = [];
  for (const conv1 of model.graph!.node) {
    if (!isPlainConv(conv1, index)) continue;
    let tensor = conv1.output[0];
    let next = soleUser(tensor);
    let linear = true;
    if (next?.opType === 'Relu') {
      tensor = next.output[0];
      next = soleUser(tensor);
      linear = false;
    }
    if (!isPlainConv(next, index) || next.input[0] !== tensor) continue;
    const w1 = index.initializers.get(conv1.input[1])!;
    const w2 = index.initializers.get(next.input[1])!;
    if (Number(w2.dims[1]) * attrInt(next, 'group', 1) !== Number(w1.dims[0])) continue;
    pairs.push({ producer: conv1.name, consumer: next.name, tensor, shiftable: linear && padsNothing(next) });
  }
  return pairs;
}

/** Rows of W1 and columns of W2 that belong to tensor channel i. */
interface PairLayout {
  channels: number;
  /** Elements per output channel of W1. */
  rowSize: number;
  /** Conv2: output channels per group, input channels per group, kernel elements. */
  outPerGroup: number;
  inPerGroup: number;
  kernel: number;
}

function layoutOf(w1: TensorProto, w2: TensorProto, group2: number): PairLayout {
  const d1 = dimsOf(w1);
  const d2 = dimsOf(w2);
  return {
    channels: d1[0],
    rowSize: d1.slice(1).reduce((a, b) => a * b, 1),
    outPerGroup: d2[0] / group2,
    inPerGroup: d2[1],
    kernel: d2.slice(2).reduce((a, b) => a * b, 1),
  };
}

/** Calls `f` with the flat index of every Conv2 weight that reads channel `i`, and its output channel. */
function forInputChannel(l: PairLayout, i: number, f: (k: number, out: number) => void): void {
  const g = Math.floor(i / l.inPerGroup);
  const within = i % l.inPerGroup;
  for (let o = g * l.outPerGroup; o < (g + 1) * l.outPerGroup; o++) {
    const base = (o * l.inPerGroup + within) * l.kernel;
    for (let k = 0; k < l.kernel; k++) f(base + k, o);
  }
}

/** s_i and d_i for each channel: pure, from ranges and weights. */
export function equalizationFactors(
  activation: { lo: number; hi: number }[], w2ColumnMax: ArrayLike<number>, shiftable: boolean,
): { scale: Float64Array; shift: Float64Array } {
  const n = activation.length;
  const scale = new Float64Array(n).fill(1);
  const shift = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const { lo, hi } = activation[i];
    const centre = shiftable ? (lo + hi) / 2 : 0;
    const a = shiftable ? (hi - lo) / 2 : Math.max(Math.abs(lo), Math.abs(hi));
    const w = w2ColumnMax[i];
    if (!(a > 0) || !(w > 0) || !Number.isFinite(a)) continue; // dead channel: leave it
    scale[i] = Math.min(SCALE_LIMIT, Math.max(1 / SCALE_LIMIT, Math.sqrt(a / w)));
    shift[i] = centre;
  }
  return { scale, shift };
}

/**
 * Equalizes every pair. `ranges` gives measured per-channel extremes of each pair's tensor;
 * a pair without them uses Conv1's weights as the range (data-free) and is not shifted.
 */
export function equalizeModel(model: ModelProto, pairs: EqualizationPair[], ranges: Map<string, ChannelRange> = new Map()): EqualizeResult {
  const out = cloneModel(model);
  const graph = out.graph!;
  const byName = new Map(graph.node.map((n) => [n.name, n]));
  const done: EqualizationPair[] = [];
  let serial = 0;
  for (const pair of pairs) {
    const index = new GraphIndex(graph);
    const conv1 = byName.get(pair.producer);
    const conv2 = byName.get(pair.consumer);
    if (!conv1 || !conv2) continue;
    const w1t = index.initializers.get(conv1.input[1])!;
    const w2t = index.initializers.get(conv2.input[1])!;
    const l = layoutOf(w1t, w2t, attrInt(conv2, 'group', 1));
    const w1 = tensorToNumbers(w1t);
    const w2 = tensorToNumbers(w2t);
    const b1 = conv1.input[2] ? tensorToNumbers(index.initializers.get(conv1.input[2])!) : new Float64Array(l.channels);
    const b2 = conv2.input[2] ? tensorToNumbers(index.initializers.get(conv2.input[2])!) : new Float64Array(dimsOf(w2t)[0]);
    const measured = ranges.get(pair.tensor);
    const activation = Array.from({ length: l.channels }, (_, i) => {
      if (measured) return { lo: measured.min[i], hi: measured.max[i] };
      let m = 0;
      for (let k = i * l.rowSize; k < (i + 1) * l.rowSize; k++) m = Math.max(m, Math.abs(w1[k]));
      return { lo: -m, hi: m };
    });
    const columnMax = new Float64Array(l.channels);
    for (let i = 0; i < l.channels; i++) forInputChannel(l, i, (k) => { columnMax[i] = Math.max(columnMax[i], Math.abs(w2[k])); });
    const { scale, shift } = equalizationFactors(activation, columnMax, pair.shiftable && !!measured);
    for (let i = 0; i < l.channels; i++) {
      for (let k = i * l.rowSize; k < (i + 1) * l.rowSize; k++) w1[k] /= scale[i];
      const d = shift[i] / scale[i]; // the centre in the rescaled channel
      b1[i] = b1[i] / scale[i] - d;
      forInputChannel(l, i, (k, o) => {
        w2[k] *= scale[i];
        b2[o] += w2[k] * d;
      });
    }
    const tag = `__eq${serial++}`;
    graph.initializer.push(
      makeTensor(`${w1t.name}${tag}w`, DataType.FLOAT, dimsOf(w1t), w1),
      makeTensor(`${conv1.name}${tag}b`, DataType.FLOAT, [b1.length], b1),
      makeTensor(`${w2t.name}${tag}w`, DataType.FLOAT, dimsOf(w2t), w2),
      makeTensor(`${conv2.name}${tag}b`, DataType.FLOAT, [b2.length], b2),
    );
    conv1.input = [conv1.input[0], `${w1t.name}${tag}w`, `${conv1.name}${tag}b`];
    conv2.input = [conv2.input[0], `${w2t.name}${tag}w`, `${conv2.name}${tag}b`];
    done.push(pair);
  }
  const used = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  return { model: out, pairs: done };
}

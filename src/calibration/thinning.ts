// Spatially thinned histogram taps: large NCHW activations are counted on every other row
// and column (a quarter of their values), while their exact minimum and maximum still come
// from the whole tensor, reduced inside ORT.
//
// Why: on a real detector a page holds ~11 M activation values against a ~17 ms forward pass.
// Copying all of them out of ORT and counting them in JavaScript costs 5–6× the forward pass
// per sample; a quarter of them costs about a quarter of that. Neighbouring pixels of a
// feature map are strongly correlated, so the 2×2 grid's histogram is a close estimate of the
// full one, and every channel keeps its share because only H and W are strided. The extremes
// stay exact, so min/max-sensitive choices (the histogram layout, the clamping of quantiles)
// are unchanged. Small tensors are never thinned (THIN_MIN_VALUES): there the tap is cheap
// and every value matters for the tails.

import { DataType, GraphIndex, cloneModel, makeNode, makeTensor, valueInfo, type ModelProto } from '../onnx/index.js';

/** Per-sample values from which a rank-4 tensor is tapped thinned. 2**16: a 64×64 map of 16 channels. */
export const THIN_MIN_VALUES = 2 ** 16;
/** Stride along H and along W: a quarter of the values are counted. */
export const THIN_STEP = 2;

/** The extra outputs that carry one thinned tensor: strided values, exact min, exact max. */
export function thinnedOutputs(t: string): [values: string, min: string, max: string] {
  return [`${t}__calibd_thin`, `${t}__calibd_thin_min`, `${t}__calibd_thin_max`];
}

const SLICE_STARTS = 'calibd_thin_starts';
const SLICE_ENDS = 'calibd_thin_ends';
const SLICE_AXES = 'calibd_thin_axes';
const SLICE_STEPS = 'calibd_thin_steps';

/**
 * Measured tensors known to be rank 4 (N, C, H, W): inputs and outputs of Convs with a 4-D
 * weight, and tensors whose declared shape has four dimensions. Others are never thinned,
 * because a strided Slice on a tensor of another rank would fail inside ORT.
 */
export function rank4Tensors(model: ModelProto, measured: readonly string[]): string[] {
  const graph = model.graph!;
  const index = new GraphIndex(graph);
  const four = new Set<string>();
  for (const n of graph.node) {
    if (n.opType !== 'Conv') continue;
    if (index.initializers.get(n.input[1] ?? '')?.dims.length !== 4) continue;
    four.add(n.input[0]);
    four.add(n.output[0]);
  }
  for (const v of [...graph.valueInfo, ...graph.input, ...graph.output]) {
    const t = v.type?.value;
    if (t?.case === 'tensorType' && t.value.shape?.dim.length === 4) four.add(v.name);
  }
  return measured.filter((t) => four.has(t));
}

/** `model` with, for each tensor of `tensors` (all rank 4), its thinned values and exact extremes as extra outputs. */
export function withThinnedTaps(model: ModelProto, tensors: readonly string[]): ModelProto {
  if (tensors.length === 0) return model;
  const out = cloneModel(model);
  const graph = out.graph!;
  const i64 = (name: string, values: bigint[]) => makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values));
  graph.initializer.push(
    i64(SLICE_STARTS, [0n, 0n]),
    i64(SLICE_ENDS, [2n ** 62n, 2n ** 62n]),
    i64(SLICE_AXES, [2n, 3n]),
    i64(SLICE_STEPS, [BigInt(THIN_STEP), BigInt(THIN_STEP)]),
  );
  for (const t of tensors) {
    const [values, lo, hi] = thinnedOutputs(t);
    graph.node.push(
      makeNode('Slice', [t, SLICE_STARTS, SLICE_ENDS, SLICE_AXES, SLICE_STEPS], [values], `${values}__node`),
      makeNode('ReduceMin', [t], [lo], `${lo}__node`, { keepdims: 0 }),
      makeNode('ReduceMax', [t], [hi], `${hi}__node`, { keepdims: 0 }),
    );
    graph.output.push(valueInfo(values, DataType.FLOAT), valueInfo(lo, DataType.FLOAT), valueInfo(hi, DataType.FLOAT));
  }
  return out;
}

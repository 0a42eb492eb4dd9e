// Per-channel extremes of chosen tensors over a sample source, computed inside ORT
// (ReduceMin/ReduceMax over every axis but the channel axis), so a run hands back two
// short vectors per tensor instead of the activation. Cross-layer equalization reads them.

import { GraphIndex, type ModelProto } from '../onnx/index.js';
import type { ChannelRange } from '../quant/index.js';
import { forEachChannelReduction, type ChannelReduction } from './channel-means.js';
import type { SampleSource } from './samples.js';

const minOutput = (t: string) => `${t}__calibd_chmin`;
const maxOutput = (t: string) => `${t}__calibd_chmax`;

export interface ChannelRangeOptions {
  threads?: number;
  batchSize?: number;
}

/** Channel extremes of each tensor in `tensors` (name → rank) over every sample of `source`. */
export async function measureChannelRanges(
  model: ModelProto, tensors: Map<string, number>, source: SampleSource, opts: ChannelRangeOptions = {},
): Promise<Map<string, ChannelRange>> {
  const ranges = new Map<string, { min: Float64Array; max: Float64Array }>();
  // Only two short vectors per tensor come back, but ORT holds a batch's intermediates:
  // one sample at a time keeps that small on large inputs.
  const reductions: ChannelReduction[] = [['ReduceMin', minOutput], ['ReduceMax', maxOutput]];
  await forEachChannelReduction(model, tensors, reductions, source, { threads: opts.threads, batchSize: opts.batchSize ?? 1, optimization: 'basic' }, (out) => {
    for (const t of tensors.keys()) {
      const lo = out[minOutput(t)];
      const hi = out[maxOutput(t)];
      const r = ranges.get(t) ?? { min: new Float64Array(lo.length).fill(Infinity), max: new Float64Array(hi.length).fill(-Infinity) };
      for (let c = 0; c < lo.length; c++) {
        if (Number.isFinite(lo[c])) r.min[c] = Math.min(r.min[c], lo[c]);
        if (Number.isFinite(hi[c])) r.max[c] = Math.max(r.max[c], hi[c]);
      }
      ranges.set(t, r);
    }
  });
  return ranges;
}

/** Rank of each tensor a Conv reads (its weight's rank), for the reductions above. */
export function convInputRanks(model: ModelProto, tensors: { tensor: string; consumer: string }[]): Map<string, number> {
  const index = new GraphIndex(model.graph!);
  const byName = new Map(model.graph!.node.map((n) => [n.name, n]));
  const ranks = new Map<string, number>();
  for (const { tensor, consumer } of tensors) {
    const w = index.initializers.get(byName.get(consumer)?.input[1] ?? '');
    if (w) ranks.set(tensor, w.dims.length);
  }
  return ranks;
}

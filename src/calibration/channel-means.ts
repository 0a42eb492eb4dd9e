// Per-channel means of the tensors that feed quantized Conv/Gemm nodes, which bias
// correction needs (quant/bias-correction.ts). The tap computes them inside ORT with a
// ReduceMean over every axis but the channel axis, so each run hands back one small vector
// per tensor instead of the activation itself; ChannelMeanObserver averages them over runs.

import { DataType, GraphIndex, cloneModel, makeNode, makeTensor, onnxOpset, pruneToOutputs, valueInfo, type ModelProto } from '../onnx/index.js';
import type { QuantizationPlan } from '../quant/index.js';
import { createSession, type SessionOptions } from '../runtime/index.js';
import { dropNonFinite, toFeeds, type SampleSource } from './samples.js';

/** Running weighted mean of per-channel vectors; fades like the range collectors. */
export class ChannelMeanObserver {
  private sum: Float64Array | null = null;
  private weight = 0;

  /** Adds one run's channel means, computed over `count` samples. */
  update(means: ArrayLike<number>, count: number): void {
    if (!(count > 0)) return;
    for (let i = 0; i < means.length; i++) if (!Number.isFinite(means[i])) return; // an overflowed run says nothing
    if (!this.sum || this.sum.length !== means.length) {
      this.sum = new Float64Array(means.length);
      this.weight = 0;
    }
    for (let i = 0; i < means.length; i++) this.sum[i] += means[i] * count;
    this.weight += count;
  }

  decay(factor: number): void {
    if (!this.sum) return;
    for (let i = 0; i < this.sum.length; i++) this.sum[i] *= factor;
    this.weight *= factor;
  }

  /** The mean so far, or null before any run. */
  mean(): Float64Array | null {
    return this.sum && this.weight > 0 ? this.sum.map((s) => s / this.weight) : null;
  }
}

export const channelMeanOutput = (t: string) => `${t}__calibd_chmean`;

/**
 * The activation inputs whose bias the quantizer can correct, with their rank: each
 * planned Conv/Gemm that has a bias reads one (a Conv's input has its weight's rank).
 */
export function biasCorrectedInputs(model: ModelProto, plan: QuantizationPlan): Map<string, number> {
  const index = new GraphIndex(model.graph!);
  const byName = new Map(model.graph!.node.map((n) => [n.name, n]));
  const inputs = new Map<string, number>();
  for (const w of plan.weights) {
    const node = byName.get(w.node);
    if (!node || w.bias === null || !index.isActivation(node.input[0])) continue;
    const weight = index.initializers.get(node.input[1]);
    if (!weight) continue;
    inputs.set(node.input[0], node.opType === 'Gemm' ? 2 : weight.dims.length);
  }
  return inputs;
}

/** `model` with a ReduceMean over every non-channel axis of each tensor as an extra output. */
export function withChannelMeans(model: ModelProto, tensors: Map<string, number>): ModelProto {
  return withChannelReductions(model, tensors, [['ReduceMean', channelMeanOutput]]);
}

export type ChannelReduction = [op: 'ReduceMean' | 'ReduceMin' | 'ReduceMax', output: (t: string) => string];

/** `model` with each reduction over every non-channel axis of each tensor (name → rank) as extra outputs. */
export function withChannelReductions(model: ModelProto, tensors: Map<string, number>, reductions: ChannelReduction[]): ModelProto {
  const out = cloneModel(model);
  const graph = out.graph!;
  const axesAsInput = onnxOpset(out) >= 18; // the Reduce ops' axes moved from attribute to input
  for (const [t, rank] of tensors) {
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    for (const [op, output] of reductions) {
      const name = output(t);
      if (axesAsInput) {
        graph.initializer.push(makeTensor(`${name}__axes`, DataType.INT64, [axes.length], BigInt64Array.from(axes.map(BigInt))));
        graph.node.push(makeNode(op, [t, `${name}__axes`], [name], `${name}__node`, { keepdims: 0 }));
      } else {
        graph.node.push(makeNode(op, [t], [name], `${name}__node`, { keepdims: 0, axes }));
      }
      graph.output.push(valueInfo(name, DataType.FLOAT));
    }
  }
  return out;
}

/**
 * Streams `source` through `model` with each reduction of each tensor (name → rank) as an
 * extra output, and hands every batch's reduced vectors (by output name) and sample count
 * to `take`. Samples holding NaN or Infinity are skipped, as calibration skips them. The
 * session keeps ORT's arena: its outputs are the same short vectors every run.
 */
export async function forEachChannelReduction(
  model: ModelProto, tensors: Map<string, number>, reductions: ChannelReduction[], source: SampleSource,
  opts: { threads?: number; batchSize: number; optimization?: SessionOptions['optimization'] },
  take: (reduced: Record<string, Float32Array>, count: number) => void,
): Promise<void> {
  if (tensors.size === 0) return;
  const reducing = withChannelReductions(model, tensors, reductions);
  const names = [...tensors.keys()].flatMap((t) => reductions.map(([, output]) => output(t)));
  // Only what feeds the reductions runs (bias correction measures one early layer at a time).
  reducing.graph = pruneToOutputs(reducing.graph!, names);
  const session = await createSession(reducing, { threads: opts.threads ?? 1, optimization: opts.optimization }, 'channel-statistics model');
  try {
    for await (const raw of source.batches(opts.batchSize)) {
      const { batch } = dropNonFinite(raw);
      if (!batch) continue;
      const out = await session.run(toFeeds(batch));
      const reduced: Record<string, Float32Array> = {};
      for (const name of Object.keys(out)) reduced[name] = out[name].data as Float32Array;
      take(reduced, batch[Object.keys(batch)[0]].dims[0]);
    }
  } finally {
    await session.release();
  }
}

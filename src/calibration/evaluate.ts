// How far an INT8 model is from its FP32 reference on the same inputs: top-1 agreement,
// output SQNR, accuracy against labels, and per-tensor SQNR to find the worst layers.
// The daemon's validation gate and `calibd eval` both use it.

import { DataError } from '../common/index.js';
import { GraphIndex, cloneModel, DataType, valueInfo, type ModelProto } from '../onnx/index.js';
import { createSession, type ort } from '../runtime/index.js';
import { toFeeds, type SampleSource } from './samples.js';
import { argmaxRows, inferMetric, MetricAccumulator, OutputScore, parseMetric, SqnrAccumulator, type Figures, type TaskMetric } from './metrics.js';

export interface ComparisonOptions {
  /** Output to compare (default: the first). */
  output?: string;
  /** Integer class labels, one per sample in source order. */
  labels?: ArrayLike<number>;
  /** Also measure every quantized tensor's SQNR (slower: taps both models). */
  perTensor?: boolean;
  batchSize?: number;
  threads?: number;
  /** Task metric for every output (default: inferred from the first output's shape and values). */
  metric?: TaskMetric;
}

export interface OutputComparison {
  name: string;
  value: number;
  sqnrDb: number;
}

/**
 * `agreement`: share of rows of the compared output's last axis where the argmax agrees;
 * `sqnrDb`: 10·log10(signal energy / error energy) of the compared output;
 * `value`: the task metric, the worst over every output of the model.
 */
export interface Comparison extends Figures {
  samples: number;
  accuracyFp32?: number;
  accuracyInt8?: number;
  /** Worst tensors first. */
  tensors?: { name: string; sqnrDb: number }[];
  metric: TaskMetric;
  outputs: OutputComparison[];
}

function withOutputs(model: ModelProto, names: string[]): ModelProto {
  const copy = cloneModel(model);
  const g = copy.graph!;
  const have = new Set([...g.output.map((o) => o.name), ...g.input.map((i) => i.name)]);
  for (const n of names) if (!have.has(n)) g.output.push(valueInfo(n, DataType.FLOAT));
  return copy;
}

/**
 * Runs both models over the source. `int8Tensors` maps an FP32 tensor name to its
 * counterpart in the INT8 graph (its dequantized copy) for per-tensor SQNR.
 */
/** Samples a batch when every quantized tensor is compared (see compareModels). */
const PER_TENSOR_BATCH = 4;

export async function compareModels(
  fp32: ModelProto,
  int8: ModelProto,
  source: SampleSource,
  opts: ComparisonOptions & { int8Tensors?: Map<string, string> } = {},
): Promise<Comparison> {
  const output = opts.output ?? fp32.graph!.output[0].name;
  if (!int8.graph!.output.some((o) => o.name === output)) {
    throw new DataError(`the INT8 model has no output '${output}'`, {
      value: output,
      hint: 'compare an INT8 model with the FP32 model it was calibrated from',
    });
  }
  const pairs = opts.perTensor && opts.int8Tensors ? [...opts.int8Tensors] : [];
  const fpIndex = new GraphIndex(fp32.graph!);
  const tapPairs = pairs.filter(([f]) => fpIndex.producer.has(f) || fpIndex.graphInputs.includes(f));
  const threads = opts.threads ?? 1;
  const fpSession = await createSession(tapPairs.length ? withOutputs(fp32, tapPairs.map(([f]) => f)) : fp32, { threads }, 'FP32 model');
  const qSession = await createSession(tapPairs.length ? withOutputs(int8, tapPairs.map(([, q]) => q)) : int8, { threads }, 'INT8 model');
  try {
    const outputNames = fp32.graph!.output.map((o) => o.name).filter((n) => int8.graph!.output.some((o) => o.name === n));
    let metric = opts.metric;
    let perOutput: Map<string, MetricAccumulator> | null = null;
    const perTensor = new Map(tapPairs.map(([f]) => [f, new SqnrAccumulator()]));
    let compared: OutputScore | null = null;
    let correctFp = 0;
    let correctQ = 0;
    let samples = 0;
    // Tapping every tensor of both models holds a batch's whole activations twice (the OCR
    // recogniser's `--auto`: 5.1 GB at 32 lines a batch), so per-tensor runs go 4 at a time.
    const batchSize = opts.batchSize ?? (tapPairs.length ? PER_TENSOR_BATCH : 32);
    for await (const batch of source.batches(batchSize)) {
      const feeds = toFeeds(batch);
      const a = await fpSession.run(feeds);
      const b = await qSession.run(feeds);
      const ra = a[output];
      const rb = b[output];
      if (!perOutput) {
        metric ??= inferMetric(ra.dims.map(Number), ra.data as Float32Array);
        perOutput = new Map(outputNames.map((n) => [n, new MetricAccumulator(metric!)]));
        compared = new OutputScore(metric);
      }
      compared!.add(ra.data as Float32Array, rb.data as Float32Array, ra.dims.map(Number));
      for (const [n, acc] of perOutput) acc.add(a[n].data as Float32Array, b[n].data as Float32Array, a[n].dims.map(Number));
      const n = feeds[Object.keys(feeds)[0]].dims[0];
      if (opts.labels) {
        const width = ra.dims[ra.dims.length - 1] ?? 1;
        const pa = argmaxRows(ra.data as Float32Array, width);
        const pb = argmaxRows(rb.data as Float32Array, width);
        // Per-sample labels apply when the output has one row per sample.
        if (pa.length === n) {
          for (let r = 0; r < n; r++) {
            const label = opts.labels[samples + r];
            if (pa[r] === label) correctFp++;
            if (pb[r] === label) correctQ++;
          }
        }
      }
      for (const [f, q] of tapPairs) {
        const ref = (a[f] ?? feeds[f]) as ort.Tensor;
        const test = b[q] as ort.Tensor;
        perTensor.get(f)!.add(ref.data as Float32Array, test.data as Float32Array);
      }
      samples += n;
    }
    metric ??= parseMetric('sqnr');
    const outputs = [...(perOutput ?? [])].map(([name, acc]) => ({ name, value: acc.value, sqnrDb: acc.sqnrDb }));
    const value = outputs.length ? Math.min(...outputs.map((o) => o.value)) : 0;
    // The compared output is one of the model's outputs, so its SQNR is already accumulated.
    const sqnrDb = perOutput?.get(output)?.sqnrDb ?? new SqnrAccumulator().db;
    const result: Comparison = { samples, agreement: compared?.figures().agreement ?? 0, sqnrDb, metric, value, outputs };
    if (opts.labels) {
      if (opts.labels.length < samples) {
        throw new DataError(`${opts.labels.length} labels for ${samples} samples`, {
          value: opts.labels.length,
          hint: 'give one label per sample',
        });
      }
      result.accuracyFp32 = correctFp / samples;
      result.accuracyInt8 = correctQ / samples;
    }
    if (tapPairs.length) {
      result.tensors = [...perTensor].map(([name, acc]) => ({ name, sqnrDb: acc.db })).sort((x, y) => x.sqnrDb - y.sqnrDb);
    }
    return result;
  } finally {
    await fpSession.release();
    await qSession.release();
  }
}

// "INT8 only where it pays": which nodes of a calibrated model to leave in FP32 so that the
// INT8 model is both faster than FP32 on this CPU and inside an accuracy budget.
//
//   full INT8 ─► per-node kernel time (ORT profiler, FP32 and INT8) + per-node sensitivity
//   (output SQNR with that node alone FP32) ─► greedy: drop what the profile says is slower
//   in INT8 · drop isolated INT8 nodes that cannot pay for their Q/DQ boundary · drop the
//   most sensitive nodes until the accuracy budget holds · drop the smallest gains until
//   the measured latency ratio holds. Every latency figure is an interleaved end-to-end
//   timing against FP32 at batch 1; the profile only orders the candidates.

import { cpus } from 'node:os';
import { GraphIndex, type ModelProto, type NodeProto } from '../onnx/index.js';
import { COMPUTE_OPS, dequantizedName, planQuantization, quantizeModel, type QuantizationPlan, type QuantizeOptions, type QuantizeStatistics, type Range } from '../quant/index.js';
import { attributeKernelTimes, createSession, interleaved, ort, profileModel } from '../runtime/index.js';
import { compareModels } from './evaluate.js';
import { toFeeds, type Batch, type SampleSource } from './samples.js';
import { formatMetric, inferMetric, MetricAccumulator, METRIC_BOUNDS, parseMetric, type TaskMetric } from './metrics.js';

const TOP1 = parseMetric('top1');

export interface AccuracyBudget {
  /** Top-1 agreement with FP32, 0..1 (default 0.99). */
  agreement: number;
  /** Output SQNR against FP32, dB (default 30). */
  sqnrDb: number;
  /** Least value of the task metric (default per metric, METRIC_BOUNDS). */
  value?: number;
}

export interface SelectionOptions {
  budget?: Partial<AccuracyBudget>;
  /** Latency ratio (auto / FP32) that must hold (default 1.0). */
  targetRatio?: number;
  /** Ratio worth a few more timings to reach (default 0.9). */
  preferRatio?: number;
  threads?: number;
  /** Interleaved timing of each check (default 6 blocks × 15 runs). */
  timing?: { blocks?: number; perBlock?: number };
  /** Profiled runs per model (default 30). */
  profileRuns?: number;
  /** End-to-end timings allowed, the first two (FP32 vs full INT8) included (default 8). */
  maxTimings?: number;
  /** Samples used per sensitivity run (default: all of the validation set, at most 32). */
  sensitivitySamples?: number;
  /**
   * Task metric the budget is judged on, with its least value `budget.value`. Unset: the
   * output's inferred metric; for top1, the agreement and SQNR budget as before.
   */
  metric?: TaskMetric;
  log?: (s: string) => void;
}

export interface NodeReport {
  node: string;
  opType: string;
  /** Kernel time per run in the FP32 model (fused activation included), µs. */
  fp32Us: number;
  /** Kernel time per run in the full INT8 model, Q/DQ hops at its boundary included, µs. */
  int8Us: number;
  /** SQNR of the node's output tensor in the full INT8 model, dB. */
  tensorSqnrDb: number | null;
  /** Output SQNR of the model with only this node FP32 (compute nodes), dB. */
  sensitivityDb: number | null;
  decision: 'int8' | 'fp32';
  reason: string;
}

export interface Figures {
  agreement: number;
  sqnrDb: number;
  /** The task metric's value. */
  value: number;
}

export interface SelectionStep {
  step: string;
  excluded: number;
  agreement: number;
  sqnrDb: number;
  ratio?: number;
  kept: boolean;
}

export interface SelectionResult {
  /** Node names to leave in FP32 (pass as QuantizeOptions.exclude). */
  exclude: string[];
  outcome: 'full-int8' | 'mixed' | 'all-fp32';
  /** Whether the answer holds both the latency target and the accuracy budget. */
  met: { latency: boolean; accuracy: boolean };
  int8Nodes: number;
  latency: { fp32Ms: number; fullInt8Ms: number; autoMs: number; ratio: number; fullInt8Ratio: number; batch: 1 };
  accuracy: { metric: string; budget: AccuracyBudget; samples: number; fullInt8: Figures; auto: Figures };
  /** Kernel time the profiler could not give to a node: layout changes and Q/DQ hops, µs per run. */
  overheadUs: { fp32: number; int8: number };
  perNode: NodeReport[];
  steps: SelectionStep[];
  hardware: { cpu: string; cores: number; ortVersion: string; threads: number };
}

export interface SelectionInput {
  /** The 'basic'-prepared FP32 graph calibration ran on. */
  prepared: ModelProto;
  /** Ranges of every tensor of the full plan (`tensorsToCalibrate`). */
  ranges: Map<string, Range>;
  options: QuantizeOptions;
  /** Statistics beyond ranges (bias correction's input means), as Calibrator.statistics(). */
  stats?: QuantizeStatistics;
}

const CHAINED = new Set(['Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool']);
const FUSABLE = new Set(['Relu', 'Clip', 'HardSigmoid', 'Sigmoid', 'LeakyRelu', 'Tanh']);

/** CPU, ORT version and threads: what a selection's timings are valid for. */
export function hardwareKey(threads = 1): SelectionResult['hardware'] {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown';
  return { cpu, cores: cpus().length, ortVersion: ort.env.versions.node ?? ort.env.versions.common, threads };
}

/** The INT8 model of `input` with `exclude` (on top of the options' own) left FP32. */
export function buildVariant(input: SelectionInput, fullPlan: QuantizationPlan, exclude: string[]): { model: ModelProto; plan: QuantizationPlan } {
  const options = { ...input.options, exclude: [...(input.options.exclude ?? []), ...exclude] };
  const plan = planQuantization(input.prepared, options);
  // A tensor that shared its producer's parameters in the full plan (e.g. after MaxPool)
  // may need its own once that producer is FP32: the source range bounds it.
  const ranges = new Map(input.ranges);
  for (const [t, src] of fullPlan.sharedWith) if (!ranges.has(t) && ranges.has(src)) ranges.set(t, ranges.get(src)!);
  return { model: quantizeModel(input.prepared, plan, ranges, options, input.stats).model, plan };
}

/** Agreement and SQNR of candidates against FP32 outputs computed once. */
class Validator {
  private constructor(
    private readonly batches: Batch[],
    private readonly reference: Float32Array[],
    private readonly output: string,
    private readonly threads: number,
    private readonly dims: number[],
    readonly metric: TaskMetric,
  ) {}

  static async create(fp32: ModelProto, source: SampleSource, threads: number, given?: TaskMetric): Promise<Validator> {
    const output = fp32.graph!.output[0].name;
    const session = await createSession(fp32, { threads }, 'FP32 model');
    const batches: Batch[] = [];
    const reference: Float32Array[] = [];
    let dims: number[] = [];
    let metric = given;
    try {
      for await (const b of source.batches(32)) {
        batches.push(b);
        const out = (await session.run(toFeeds(b)))[output];
        dims = out.dims.map(Number);
        metric ??= inferMetric(dims, out.data as Float32Array);
        reference.push(Float32Array.from(out.data as Float32Array));
      }
    } finally {
      await session.release();
    }
    return new Validator(batches, reference, output, threads, dims, metric ?? parseMetric('sqnr'));
  }

  get samples(): number {
    return this.batches.reduce((n, b) => n + b[Object.keys(b)[0]].dims[0], 0);
  }

  firstSample(): Record<string, ort.Tensor> {
    const b = this.batches[0];
    const one: Batch = {};
    for (const [name, t] of Object.entries(b)) {
      const per = t.dims.slice(1).reduce((a, d) => a * d, 1);
      one[name] = { data: t.data.slice(0, per), dims: [1, ...t.dims.slice(1)] };
    }
    return toFeeds(one);
  }

  async check(model: ModelProto, maxSamples = Infinity): Promise<Figures> {
    const session = await createSession(model, { threads: this.threads }, 'INT8 model');
    try {
      // Agreement and SQNR always; the task metric too when it is not top1 itself.
      const top1 = new MetricAccumulator(TOP1);
      const task = this.metric.kind === 'top1' ? top1 : new MetricAccumulator(this.metric);
      let seen = 0;
      for (let i = 0; i < this.batches.length && seen < maxSamples; i++) {
        const out = (await session.run(toFeeds(this.batches[i])))[this.output].data as Float32Array;
        top1.add(this.reference[i], out, this.dims);
        if (task !== top1) task.add(this.reference[i], out, this.dims);
        seen += this.batches[i][Object.keys(this.batches[i])[0]].dims[0];
      }
      return { agreement: top1.value, sqnrDb: top1.sqnrDb, value: task.value };
    } finally {
      await session.release();
    }
  }
}

/** Picks the nodes to leave FP32. `validation` is held out from calibration. */
export async function selectInt8Nodes(input: SelectionInput, validation: SampleSource, opts: SelectionOptions = {}): Promise<SelectionResult> {
  const log = opts.log ?? (() => undefined);
  const validator = await Validator.create(input.prepared, validation, opts.threads ?? 1, opts.metric);
  const metric = validator.metric;
  // Without an explicit metric, a classifier keeps the agreement-and-SQNR budget.
  const legacy = !opts.metric && metric.kind === 'top1';
  const budget: AccuracyBudget = {
    agreement: opts.budget?.agreement ?? 0.99,
    sqnrDb: opts.budget?.sqnrDb ?? 30,
    value: opts.budget?.value ?? METRIC_BOUNDS[metric.kind].budget,
  };
  log(`metric: ${metric.name}${opts.metric ? '' : ' (inferred from the output)'}, budget ${legacy ? `agreement ${budget.agreement}, SQNR ${budget.sqnrDb} dB` : formatMetric(metric, budget.value!)}`);
  const target = opts.targetRatio ?? 1.0;
  const prefer = opts.preferRatio ?? 0.9;
  const threads = opts.threads ?? 1;
  const maxTimings = opts.maxTimings ?? 8;
  const timing = { blocks: opts.timing?.blocks ?? 6, perBlock: opts.timing?.perBlock ?? 0 };
  const prepared = input.prepared;
  const index = new GraphIndex(prepared.graph!);
  const byName = new Map<string, NodeProto>(prepared.graph!.node.filter((n) => n.name).map((n) => [n.name, n]));
  const meets = (f: Figures) => (legacy ? f.agreement >= budget.agreement && f.sqnrDb >= budget.sqnrDb : f.value >= budget.value!);

  const fullPlan = planQuantization(prepared, input.options);
  const full = buildVariant(input, fullPlan, []);
  // Decisions are per compute node and per chained op; shape ops follow their input.
  const candidates = fullPlan.nodes.filter((n) => byName.has(n) && (COMPUTE_OPS.has(byName.get(n)!.opType) || CHAINED.has(byName.get(n)!.opType)));
  const feeds = validator.firstSample();
  const fp32Session = await createSession(prepared, { threads }, 'FP32 model');
  const steps: SelectionStep[] = [];
  if (!timing.perBlock) {
    // Blocks of at least ~25 ms, so that sub-millisecond models are not timed on a handful of runs.
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) await fp32Session.run(feeds);
    const each = (performance.now() - t0) / 10;
    timing.perBlock = Math.min(200, Math.max(15, Math.ceil(25 / each)));
  }
  let timings = 0;
  const time = async (model: ModelProto) => {
    timings++;
    const s = await createSession(model, { threads }, 'INT8 model');
    try {
      const [f, q] = await interleaved([{ name: 'fp32', run: () => fp32Session.run(feeds) }, { name: 'int8', run: () => s.run(feeds) }], timing);
      return { fp32Ms: f.medianMs, int8Ms: q.medianMs, ratio: q.medianMs / f.medianMs };
    } finally {
      await s.release();
    }
  };

  try {
    // 1. The full INT8 model: accuracy, per-tensor SQNR, per-node kernel time, latency.
    const accFull = await validator.check(full.model);
    const perTensor = await compareModels(prepared, full.model, validation, {
      perTensor: true,
      int8Tensors: new Map(fullPlan.tensors.filter((t) => index.producer.has(t)).map((t) => [t, dequantizedName(t)])),
      threads,
    });
    const tensorSqnr = new Map((perTensor.tensors ?? []).map((t) => [t.name, t.sqnrDb]));
    const profRuns = opts.profileRuns ?? 30;
    const kFp = await profileModel(prepared, feeds, { runs: profRuns, threads });
    const kQ = await profileModel(full.model, feeds, { runs: profRuns, threads });
    const aFp = attributeKernelTimes(prepared, kFp, fullPlan.nodes, []);
    const aQ = attributeKernelTimes(prepared, kQ, fullPlan.nodes, fullPlan.nodes);
    const gain = (n: string) => (aFp.perUnit.get(n) ?? 0) - (aQ.perUnit.get(n) ?? 0);
    const fullTime = await time(full.model);
    log(`full INT8: ratio ${fullTime.ratio.toFixed(3)}, ${metric.name} ${formatMetric(metric, accFull.value)}, agreement ${(100 * accFull.agreement).toFixed(2)}%, SQNR ${accFull.sqnrDb.toFixed(1)} dB`);
    steps.push({ step: 'full INT8', excluded: 0, ...accFull, ratio: fullTime.ratio, kept: true });

    // 2. Sensitivity: output SQNR with each compute node alone in FP32.
    const sensitivity = new Map<string, number>();
    const sensSamples = opts.sensitivitySamples ?? 32;
    const sensBase = await validator.check(full.model, sensSamples);
    for (const n of candidates) {
      if (!COMPUTE_OPS.has(byName.get(n)!.opType)) continue;
      sensitivity.set(n, (await validator.check(buildVariant(input, fullPlan, [n]).model, sensSamples)).sqnrDb);
    }
    const sensGain = (n: string) => (sensitivity.get(n) ?? sensBase.sqnrDb) - sensBase.sqnrDb;

    // 3. Greedy search from full INT8.
    const reasons = new Map<string, string>();
    let exclude: string[] = [];
    let current = { ratio: fullTime.ratio, ms: fullTime.int8Ms, acc: accFull };
    const int8Now = (ex: string[]) => candidates.filter((n) => !ex.includes(n));
    const tryStep = async (name: string, next: string[], why: Map<string, string>, accept: (r: number, a: Figures) => boolean): Promise<boolean> => {
      if (timings >= maxTimings) return false;
      const v = buildVariant(input, fullPlan, next);
      const acc = await validator.check(v.model);
      const t = await time(v.model);
      const kept = accept(t.ratio, acc);
      steps.push({ step: name, excluded: next.length, ...acc, ratio: t.ratio, kept });
      log(`${name}: ${next.length} FP32, ratio ${t.ratio.toFixed(3)}, ${metric.name} ${formatMetric(metric, acc.value)}, agreement ${(100 * acc.agreement).toFixed(2)}%, SQNR ${acc.sqnrDb.toFixed(1)} dB${kept ? '' : ' (not kept)'}`);
      if (kept) {
        exclude = next;
        current = { ratio: t.ratio, ms: t.int8Ms, acc };
        for (const [n, r] of why) reasons.set(n, r);
      }
      return kept;
    };

    // 3a. Nodes the profile shows slower in INT8.
    // "Slower" beyond the profiler's resolution: a microsecond, or 5% of the FP32 kernel.
    const slower = candidates.filter((n) => -gain(n) > Math.max(1, 0.05 * (aFp.perUnit.get(n) ?? 0)));
    if (slower.length) {
      await tryStep('slower in INT8 (profile)', slower, new Map(slower.map((n) => [n, `INT8 ${(-gain(n)).toFixed(0)} µs slower`])), (r) => r <= current.ratio * 1.02);
    }

    // 3b. Isolated INT8 nodes whose gain cannot pay for a Q/DQ pair on each side.
    const hops = kQ.filter((k) => /__(QuantizeLinear|DequantizeLinear)(\/duplicated)?$/.test(k.name)).map((k) => k.us).sort((a, b) => a - b);
    const boundaryUs = hops.length ? 2 * hops[Math.floor(hops.length / 2)] : 0;
    const neighbours = (n: string): string[] => {
      const node = byName.get(n)!;
      const near = new Set<string>();
      const up = (t: string, depth = 0) => {
        const p = index.producer.get(t);
        if (!p || depth > 4) return;
        if (candidates.includes(p.name)) near.add(p.name);
        else if (!COMPUTE_OPS.has(p.opType)) p.input.forEach((i) => up(i, depth + 1));
      };
      const down = (t: string, depth = 0) => {
        for (const c of index.consumersOf(t)) {
          if (candidates.includes(c.name)) near.add(c.name);
          else if (!COMPUTE_OPS.has(c.opType) && depth < 4) c.output.forEach((o) => down(o, depth + 1));
        }
      };
      node.input.forEach((t) => up(t));
      node.output.forEach((t) => down(t));
      return [...near];
    };
    const isolated = int8Now(exclude).filter((n) => gain(n) < boundaryUs && neighbours(n).every((m) => exclude.includes(m)));
    if (isolated.length) {
      await tryStep('isolated, gain below Q/DQ cost', [...exclude, ...isolated], new Map(isolated.map((n) => [n, `isolated; gain ${gain(n).toFixed(0)} µs < boundary ${boundaryUs.toFixed(0)} µs`])), (r) => r <= current.ratio * 1.02);
    }

    // 3c. Accuracy: leave FP32 the most sensitive nodes, as few as the budget allows.
    if (!meets(current.acc)) {
      const order = int8Now(exclude).sort((a, b) => sensGain(b) - sensGain(a));
      let lo = 1;
      let hi = order.length;
      let found: { k: number; acc: Figures } | null = null;
      while (lo <= hi) {
        const k = Math.floor((lo + hi) / 2);
        const acc = await validator.check(buildVariant(input, fullPlan, [...exclude, ...order.slice(0, k)]).model);
        if (meets(acc)) {
          found = { k, acc };
          hi = k - 1;
        } else lo = k + 1;
      }
      const k = found?.k ?? order.length;
      const next = [...exclude, ...order.slice(0, k)];
      const why = new Map(order.slice(0, k).map((n) => [n, `sensitive: +${sensGain(n).toFixed(1)} dB when FP32`]));
      if (!(await tryStep('accuracy budget', next, why, () => true))) {
        exclude = next;
        for (const [n, r] of why) reasons.set(n, r);
        current = { ...current, acc: found?.acc ?? (await validator.check(buildVariant(input, fullPlan, next).model)) };
      }
    }

    // 3d. Latency: leave FP32 the smallest gains until the ratio holds (then, if cheap, the preferred one).
    while (timings < maxTimings && int8Now(exclude).length > 0 && (current.ratio > target || (current.ratio > prefer && timings < maxTimings - 1))) {
      const left = int8Now(exclude).sort((a, b) => gain(a) - gain(b));
      const take = left.slice(0, Math.max(1, Math.ceil(left.length / 4)));
      const mustImprove = current.ratio <= target;
      const accept = (r: number, a: Figures) => (meets(a) || !meets(current.acc)) && (!mustImprove || r < current.ratio);
      const ok = await tryStep('latency', [...exclude, ...take], new Map(take.map((n) => [n, `gain ${gain(n).toFixed(0)} µs too small for the latency target`])), accept);
      if (!ok && mustImprove) break;
    }

    // 4. Nothing pays: all FP32 (no Q/DQ left at all).
    const allFp32 = int8Now(exclude).length === 0 || (current.ratio > target && timings >= maxTimings);
    if (allFp32 && int8Now(exclude).length > 0) {
      for (const n of int8Now(exclude)) reasons.set(n, 'no INT8 selection beat FP32');
      exclude = [...candidates];
    }
    let final = buildVariant(input, fullPlan, exclude);
    let finalAcc = await validator.check(final.model);
    let finalTime = await time(final.model);
    if (final.plan.nodes.length > 0 && finalTime.ratio > target) {
      // The confirming timing did not reproduce the gain: never ship a model that may be slower.
      for (const n of int8Now(exclude)) reasons.set(n, 'the final timing did not confirm the gain');
      exclude = [...candidates];
      final = buildVariant(input, fullPlan, exclude);
      finalAcc = await validator.check(final.model);
      finalTime = await time(final.model);
    }
    steps.push({ step: 'final', excluded: exclude.length, ...finalAcc, ratio: finalTime.ratio, kept: true });
    log(`final: ${final.plan.nodes.length} INT8 nodes, ratio ${finalTime.ratio.toFixed(3)}, ${metric.name} ${formatMetric(metric, finalAcc.value)}, agreement ${(100 * finalAcc.agreement).toFixed(2)}%, SQNR ${finalAcc.sqnrDb.toFixed(1)} dB`);

    const int8Set = new Set(final.plan.nodes);
    const outputTensor = (n: NodeProto) => {
      const out = n.output[0];
      const users = index.consumersOf(out);
      return users.length === 1 && FUSABLE.has(users[0].opType) ? users[0].output[0] : out;
    };
    const perNode: NodeReport[] = candidates.map((n) => {
      const node = byName.get(n)!;
      return {
        node: n,
        opType: node.opType,
        fp32Us: aFp.perUnit.get(n) ?? 0,
        int8Us: aQ.perUnit.get(n) ?? 0,
        tensorSqnrDb: tensorSqnr.get(outputTensor(node)) ?? null,
        sensitivityDb: sensitivity.get(n) ?? null,
        decision: int8Set.has(n) ? 'int8' : 'fp32',
        reason: int8Set.has(n) ? 'pays' : (reasons.get(n) ?? 'follows an FP32 input'),
      };
    });
    const int8Nodes = final.plan.nodes.length;
    return {
      exclude: candidates.filter((n) => !int8Set.has(n)),
      outcome: int8Nodes === 0 ? 'all-fp32' : int8Nodes === fullPlan.nodes.length ? 'full-int8' : 'mixed',
      // All FP32 is the FP32 graph itself: its ratio is 1 whatever the timing noise says.
      met: { latency: int8Nodes === 0 || finalTime.ratio <= target, accuracy: meets(finalAcc) },
      int8Nodes,
      latency: { fp32Ms: finalTime.fp32Ms, fullInt8Ms: fullTime.int8Ms, autoMs: finalTime.int8Ms, ratio: finalTime.ratio, fullInt8Ratio: fullTime.ratio, batch: 1 },
      accuracy: { metric: metric.name, budget, samples: validator.samples, fullInt8: accFull, auto: finalAcc },
      overheadUs: { fp32: aFp.overheadUs, int8: aQ.overheadUs },
      perNode,
      steps,
      hardware: hardwareKey(threads),
    };
  } finally {
    await fp32Session.release();
  }
}

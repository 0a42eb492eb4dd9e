// "INT8 only where it pays": which nodes of a calibrated model to leave in FP32 so that the
// INT8 model is both faster than FP32 on this CPU and inside an accuracy budget.
//
//   full INT8 ─► per-node kernel time (ORT profiler, FP32 and INT8) + per-node sensitivity
//   (output SQNR with that node alone FP32) ─► the greedy policy (selection-policy.ts),
//   which asks for variants to be measured. Every latency figure is an interleaved
//   end-to-end timing against FP32 at batch 1; the profile only orders the candidates.
//
// This module does the measuring with real ORT sessions; the decisions are the policy's.

import { cpus } from 'node:os';
import { GraphIndex, type ModelProto, type NodeProto } from '../onnx/index.js';
import {
  CHAINED_OPS, COMPUTE_OPS, dequantizedName, planQuantization, quantizeModel, resultTensor,
  type QuantizationPlan, type QuantizeOptions, type QuantizeStatistics, type Range,
} from '../quant/index.js';
import { attributeKernelTimes, createSession, interleaved, isActivationHop, ort, profileModel } from '../runtime/index.js';
import { compareModels } from './evaluate.js';
import { toFeeds, type Batch, type SampleSource } from './samples.js';
import { formatDb, formatMetric, inferMetric, METRIC_BOUNDS, OutputScore, parseMetric, type Figures, type TaskMetric } from './metrics.js';
import { greedySelection, type SelectionEvidence, type SelectionStep, type Timing, type VariantMeasure } from './selection-policy.js';

export type { SelectionStep } from './selection-policy.js';

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

/** CPU, ORT version and threads: what a selection's timings are valid for. */
export function hardwareKey(threads = 1): SelectionResult['hardware'] {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown';
  return { cpu, cores: cpus().length, ortVersion: ort.env.versions.node ?? ort.env.versions.common, threads };
}

/** The INT8 model of `input` with `exclude` (on top of the options' own) left FP32. */
export function buildVariant(input: SelectionInput, fullPlan: QuantizationPlan, exclude: readonly string[]): { model: ModelProto; plan: QuantizationPlan } {
  const options = { ...input.options, exclude: [...(input.options.exclude ?? []), ...exclude] };
  const plan = planQuantization(input.prepared, options);
  // A tensor that shared its producer's parameters in the full plan (e.g. after MaxPool)
  // may need its own once that producer is FP32: the source range bounds it.
  const ranges = new Map(input.ranges);
  for (const [t, src] of fullPlan.sharedWith) if (!ranges.has(t) && ranges.has(src)) ranges.set(t, ranges.get(src)!);
  return { model: quantizeModel(input.prepared, plan, ranges, options, input.stats).model, plan };
}

/** Agreement, SQNR and the task metric of candidates against FP32 outputs computed once. */
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

  /** Scores `model` on the first `maxSamples` samples (whole batches) with compareModels' OutputScore. */
  async check(model: ModelProto, maxSamples = Infinity): Promise<Figures> {
    const session = await createSession(model, { threads: this.threads }, 'INT8 model');
    try {
      const score = new OutputScore(this.metric);
      let seen = 0;
      for (let i = 0; i < this.batches.length && seen < maxSamples; i++) {
        const out = (await session.run(toFeeds(this.batches[i])))[this.output].data as Float32Array;
        score.add(this.reference[i], out, this.dims);
        seen += this.batches[i][Object.keys(this.batches[i])[0]].dims[0];
      }
      return score.figures();
    } finally {
      await session.release();
    }
  }
}

/** Interleaved end-to-end timings of INT8 variants against the FP32 model, on one sample. */
class LatencyBench {
  private constructor(
    private readonly fp32: ort.InferenceSession,
    private readonly feeds: Record<string, ort.Tensor>,
    private readonly threads: number,
    private readonly timing: { blocks: number; perBlock: number },
  ) {}

  static async create(prepared: ModelProto, feeds: Record<string, ort.Tensor>, threads: number, timing: SelectionOptions['timing'] = {}): Promise<LatencyBench> {
    const fp32 = await createSession(prepared, { threads }, 'FP32 model');
    const blocks = timing.blocks ?? 6;
    let perBlock = timing.perBlock ?? 0;
    if (!perBlock) {
      // Blocks of at least ~25 ms, so that sub-millisecond models are not timed on a handful of runs.
      const t0 = performance.now();
      for (let i = 0; i < 10; i++) await fp32.run(feeds);
      const each = (performance.now() - t0) / 10;
      perBlock = Math.min(200, Math.max(15, Math.ceil(25 / each)));
    }
    return new LatencyBench(fp32, feeds, threads, { blocks, perBlock });
  }

  async time(model: ModelProto): Promise<Timing> {
    const s = await createSession(model, { threads: this.threads }, 'INT8 model');
    try {
      const [f, q] = await interleaved([{ name: 'fp32', run: () => this.fp32.run(this.feeds) }, { name: 'int8', run: () => s.run(this.feeds) }], this.timing);
      return { fp32Ms: f.medianMs, int8Ms: q.medianMs, ratio: q.medianMs / f.medianMs };
    } finally {
      await s.release();
    }
  }

  release(): Promise<void> {
    return this.fp32.release();
  }
}

/** The policy's measurements, on variants built from the full plan (the last one kept, as the policy measures it twice). */
class Variants implements VariantMeasure {
  private last: { key: string; variant: { model: ModelProto; plan: QuantizationPlan } } | null = null;

  constructor(
    private readonly input: SelectionInput,
    private readonly fullPlan: QuantizationPlan,
    private readonly validator: Validator,
    private readonly bench: LatencyBench,
  ) {}

  build(exclude: readonly string[]): { model: ModelProto; plan: QuantizationPlan } {
    const key = JSON.stringify(exclude);
    if (this.last?.key !== key) this.last = { key, variant: buildVariant(this.input, this.fullPlan, exclude) };
    return this.last.variant;
  }
  accuracy(exclude: readonly string[], maxSamples?: number): Promise<Figures> {
    return this.validator.check(this.build(exclude).model, maxSamples);
  }
  time(exclude: readonly string[]): Promise<Timing> {
    return this.bench.time(this.build(exclude).model);
  }
  int8Nodes(exclude: readonly string[]): number {
    return this.build(exclude).plan.nodes.length;
  }
}

interface Budget {
  budget: AccuracyBudget;
  meets: (f: Figures) => boolean;
  /** Without an explicit metric, a classifier keeps the agreement-and-SQNR budget. */
  legacy: boolean;
}

function resolveBudget(opts: SelectionOptions, metric: TaskMetric): Budget {
  const legacy = !opts.metric && metric.kind === 'top1';
  const budget: AccuracyBudget = {
    agreement: opts.budget?.agreement ?? 0.99,
    sqnrDb: opts.budget?.sqnrDb ?? 30,
    value: opts.budget?.value ?? METRIC_BOUNDS[metric.kind].budget,
  };
  const meets = (f: Figures) => (legacy ? f.agreement >= budget.agreement && f.sqnrDb >= budget.sqnrDb : f.value >= budget.value!);
  return { budget, meets, legacy };
}

/** Each candidate's nearest candidates up and down the graph, through up to 4 non-compute ops. */
function neighbourMap(index: GraphIndex, byName: Map<string, NodeProto>, candidates: string[]): Map<string, string[]> {
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
  return new Map(candidates.map((n) => [n, neighbours(n)]));
}

/** Profiles both models and attributes kernel time to the full plan's nodes. */
async function kernelTimes(prepared: ModelProto, full: ModelProto, fullPlan: QuantizationPlan, feeds: Record<string, ort.Tensor>, runs: number, threads: number) {
  const kFp = await profileModel(prepared, feeds, { runs, threads });
  const kQ = await profileModel(full, feeds, { runs, threads });
  const fp32 = attributeKernelTimes(prepared, kFp, fullPlan.nodes, []);
  const int8 = attributeKernelTimes(prepared, kQ, fullPlan.nodes, fullPlan.nodes);
  // Two Q/DQ hops per boundary, each at the median hop's cost.
  const hops = kQ.filter((k) => isActivationHop(k.name)).map((k) => k.us).sort((a, b) => a - b);
  const boundaryUs = hops.length ? 2 * hops[Math.floor(hops.length / 2)] : 0;
  return { fp32, int8, boundaryUs };
}

function line(metric: TaskMetric, acc: Figures): string {
  return `${metric.name} ${formatMetric(metric, acc.value)}, agreement ${(100 * acc.agreement).toFixed(2)}%, SQNR ${formatDb(acc.sqnrDb)}`;
}

/** What selectInt8Nodes works on: the prepared graph, its full plan and the measuring tools. */
interface Workbench {
  input: SelectionInput;
  index: GraphIndex;
  byName: Map<string, NodeProto>;
  fullPlan: QuantizationPlan;
  full: { model: ModelProto; plan: QuantizationPlan };
  candidates: string[];
  validator: Validator;
  bench: LatencyBench;
  variants: Variants;
  /** The first validation sample: what profiles and timings run on. */
  feeds: Record<string, ort.Tensor>;
  threads: number;
}

/** Step 1, the full INT8 model: accuracy, per-tensor SQNR, per-node kernel time, latency. */
async function measureFullModel(w: Workbench, validation: SampleSource, profileRuns: number) {
  const { input, index, fullPlan, full, validator, threads } = w;
  const acc = await validator.check(full.model);
  const perTensor = await compareModels(input.prepared, full.model, validation, {
    perTensor: true,
    int8Tensors: new Map(fullPlan.tensors.filter((t) => index.producer.has(t)).map((t) => [t, dequantizedName(t)])),
    threads,
  });
  const tensorSqnr = new Map((perTensor.tensors ?? []).map((t) => [t.name, t.sqnrDb]));
  const kernels = await kernelTimes(input.prepared, full.model, fullPlan, w.feeds, profileRuns, threads);
  const time = await w.bench.time(full.model);
  return { acc, time, tensorSqnr, kernels };
}

/** Step 2: output SQNR with each compute node alone in FP32, on the first `samples` samples. */
async function sensitivities(w: Workbench, samples: number): Promise<{ baseDb: number; db: Map<string, number> }> {
  const base = await w.validator.check(w.full.model, samples);
  const db = new Map<string, number>();
  for (const n of w.candidates) {
    if (COMPUTE_OPS.has(w.byName.get(n)!.opType)) db.set(n, (await w.variants.accuracy([n], samples)).sqnrDb);
  }
  return { baseDb: base.sqnrDb, db };
}

/** Each candidate's decision and why, with its kernel times and SQNR figures. */
function nodeReports(w: Workbench, evidence: SelectionEvidence, tensorSqnr: Map<string, number>, int8Set: Set<string>, reasons: Map<string, string>): NodeReport[] {
  return w.candidates.map((n) => {
    const node = w.byName.get(n)!;
    return {
      node: n,
      opType: node.opType,
      fp32Us: evidence.fp32Us.get(n) ?? 0,
      int8Us: evidence.int8Us.get(n) ?? 0,
      tensorSqnrDb: tensorSqnr.get(resultTensor(w.index, node)) ?? null,
      sensitivityDb: evidence.sensitivityDb.get(n) ?? null,
      decision: int8Set.has(n) ? 'int8' : 'fp32',
      reason: int8Set.has(n) ? 'pays' : (reasons.get(n) ?? 'follows an FP32 input'),
    };
  });
}

async function workbench(input: SelectionInput, validation: SampleSource, opts: SelectionOptions): Promise<Workbench> {
  const threads = opts.threads ?? 1;
  const validator = await Validator.create(input.prepared, validation, threads, opts.metric);
  const index = new GraphIndex(input.prepared.graph!);
  const byName = new Map<string, NodeProto>(input.prepared.graph!.node.filter((n) => n.name).map((n) => [n.name, n]));
  const fullPlan = planQuantization(input.prepared, input.options);
  const full = buildVariant(input, fullPlan, []);
  // Decisions are per compute node and per chained op; shape ops follow their input.
  const isCandidate = (n: string) => byName.has(n) && (COMPUTE_OPS.has(byName.get(n)!.opType) || CHAINED_OPS.has(byName.get(n)!.opType));
  const feeds = validator.firstSample();
  const bench = await LatencyBench.create(input.prepared, feeds, threads, opts.timing);
  const variants = new Variants(input, fullPlan, validator, bench);
  return { input, index, byName, fullPlan, full, candidates: fullPlan.nodes.filter(isCandidate), validator, bench, variants, feeds, threads };
}

/** Picks the nodes to leave FP32. `validation` is held out from calibration. */
export async function selectInt8Nodes(input: SelectionInput, validation: SampleSource, opts: SelectionOptions = {}): Promise<SelectionResult> {
  const log = opts.log ?? (() => undefined);
  const w = await workbench(input, validation, opts);
  const metric = w.validator.metric;
  const { budget, meets, legacy } = resolveBudget(opts, metric);
  log(`metric: ${metric.name}${opts.metric ? '' : ' (inferred from the output)'}, budget ${legacy ? `agreement ${budget.agreement}, SQNR ${budget.sqnrDb} dB` : formatMetric(metric, budget.value!)}`);
  const target = opts.targetRatio ?? 1.0;
  try {
    const full = await measureFullModel(w, validation, opts.profileRuns ?? 30);
    log(`full INT8: ratio ${full.time.ratio.toFixed(3)}, ${line(metric, full.acc)}`);
    const steps: SelectionStep[] = [{ step: 'full INT8', excluded: 0, ...full.acc, ratio: full.time.ratio, kept: true }];
    const sens = await sensitivities(w, opts.sensitivitySamples ?? 32);

    // Step 3: the greedy search from full INT8.
    const evidence: SelectionEvidence = {
      candidates: w.candidates,
      fp32Us: full.kernels.fp32.perUnit,
      int8Us: full.kernels.int8.perUnit,
      sensitivityDb: sens.db,
      sensitivityBaseDb: sens.baseDb,
      boundaryUs: full.kernels.boundaryUs,
      neighbours: neighbourMap(w.index, w.byName, w.candidates),
      full: { acc: full.acc, time: full.time },
    };
    const limits = { meets, target, prefer: opts.preferRatio ?? 0.9, maxTimings: opts.maxTimings ?? 8, timingsUsed: 1 };
    const outcome = await greedySelection(evidence, w.variants, limits, (s, acc) => {
      log(`${s.step}: ${s.excluded} FP32, ratio ${s.ratio!.toFixed(3)}, ${line(metric, acc)}${s.kept ? '' : ' (not kept)'}`);
    });
    const final = w.variants.build(outcome.exclude);
    const { acc: finalAcc, time: finalTime } = outcome.final;
    steps.push(...outcome.steps, { step: 'final', excluded: outcome.exclude.length, ...finalAcc, ratio: finalTime.ratio, kept: true });
    log(`final: ${final.plan.nodes.length} INT8 nodes, ratio ${finalTime.ratio.toFixed(3)}, ${line(metric, finalAcc)}`);

    const int8Set = new Set(final.plan.nodes);
    const int8Nodes = final.plan.nodes.length;
    return {
      exclude: w.candidates.filter((n) => !int8Set.has(n)),
      outcome: int8Nodes === 0 ? 'all-fp32' : int8Nodes === w.fullPlan.nodes.length ? 'full-int8' : 'mixed',
      // All FP32 is the FP32 graph itself: its ratio is 1 whatever the timing noise says.
      met: { latency: int8Nodes === 0 || finalTime.ratio <= target, accuracy: meets(finalAcc) },
      int8Nodes,
      latency: { fp32Ms: finalTime.fp32Ms, fullInt8Ms: full.time.int8Ms, autoMs: finalTime.int8Ms, ratio: finalTime.ratio, fullInt8Ratio: full.time.ratio, batch: 1 },
      accuracy: { metric: metric.name, budget, samples: w.validator.samples, fullInt8: full.acc, auto: finalAcc },
      overheadUs: { fp32: full.kernels.fp32.overheadUs, int8: full.kernels.int8.overheadUs },
      perNode: nodeReports(w, evidence, full.tensorSqnr, int8Set, outcome.reasons),
      steps,
      hardware: hardwareKey(w.threads),
    };
  } finally {
    await w.bench.release();
  }
}

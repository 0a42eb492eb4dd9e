// calibrate(): FP32 model + samples → INT8 QDQ model with its calibration record.
//
//   prepare (ORT 'basic' pass) → plan Q/DQ placement → activation tap streams batches into
//   per-tensor collectors → ranges → QDQ rewrite → profile in metadata_props.
//
// `Calibrator` keeps the prepared model, plan, tap and collectors alive so the daemon can
// feed samples incrementally and build candidates whenever it likes.

import { OptionError, calibdVersion } from '../common/index.js';
import { DataType, GraphIndex, cloneModel, makeNode, makeTensor, serializeModel, valueInfo, type ModelProto } from '../onnx/index.js';
import {
  PROFILE_FORMAT, clampRange, resolveTargetOptions, equalizeModel, saturationIntervals, findEqualizationPairs, planQuantization, quantizeModel, sha256, tensorsToCalibrate, writeProfile,
  type BiasCorrection, type CalibrationProfile, type Equalization, type EqualizationPair, type QuantizationPlan, type QuantizeOptions, type QuantizeStatistics, type Range, type TensorCalibration,
} from '../quant/index.js';
import { ActivationTap, type ort } from '../runtime/index.js';
import { prepareModel } from './prepare.js';
import { CollectorSet, type CollectorOptions } from './collector.js';
import { CALIBRATION_METHODS, methodProfileOptions, rangeMethodOf, type CalibrationMethod } from './methods.js';
import { batchNormMeans, batchNormRanges, probeSource, type DataFreeOptions } from './datafree.js';
import { ChannelMeanObserver, biasCorrectedInputs, channelMeanOutput, withChannelMeans } from './channel-means.js';
import { empiricalBiasDeltas } from './bias-correction.js';
import { convInputRanks, measureChannelRanges } from './channel-ranges.js';
import { dropNonFinite, sliceSource, toFeeds, type Batch, type SampleSource } from './samples.js';
import { COLLECT_EVERY_BYTES, COPIES_PER_FETCH, FAST_RUN_BYTES, batchSizeFor, collectGarbage, defaultMemoryBudgetMB, probeGroups, tensorGroups } from './memory.js';
import type { SelectionInput } from './selection.js';
import { statisticsBundle, type StatisticsBundle } from './shared-statistics.js';
import { THIN_MIN_VALUES, rank4Tensors, thinnedOutputs, withThinnedTaps } from './thinning.js';

export interface CalibrateOptions extends QuantizeOptions, CollectorOptions, DataFreeOptions {
  method: CalibrationMethod;
  /** Most samples per tap run (default 32); fewer when the memory budget says so. */
  batchSize?: number;
  /**
   * Activation memory calibration may hold at once, MB (default: an eighth of RAM, at most
   * 512). Batches shrink to fit it, and a sample over it is tapped in tensor groups.
   */
  maxMemoryMB?: number;
  /**
   * Histogram methods: count large NCHW activations on a 2×2 spatial grid, with their exact
   * extremes (calibration/thinning.ts). Default true; false counts every value.
   */
  thinHistograms?: boolean;
  /** ORT intra-op threads for the tap (default 1). */
  threads?: number;
  /**
   * Bias correction (quant/bias-correction.ts): 'analytical' from the inputs' channel means
   * gathered by the tap, 'empirical' by a layer-by-layer pass over the samples after
   * observing them (calibrate() runs it; see correctBiases). Default 'none'. Data-free
   * calibration has no samples, so it never corrects.
   */
  biasCorrection?: BiasCorrection;
  /**
   * Cross-layer equalization (quant/equalize.ts) of the prepared graph before anything is
   * measured: 'weights' needs no data; 'activations' measures channel ranges on the
   * samples given to Calibrator.create (falling back to 'weights' without them). Default 'none'.
   */
  equalization?: Equalization;
  onProgress?: (done: number, total: number) => void;
}

export interface CalibrationResult {
  model: ModelProto;
  profile: CalibrationProfile;
  plan: QuantizationPlan;
  ranges: Map<string, Range>;
}

/** Tap outputs carrying every measured tensor's minimum, maximum and element count, in order. */
const EXTREMES = ['calibd_extremes_min', 'calibd_extremes_max', 'calibd_extremes_size'] as const;
const EXTREMES_SHAPE = 'calibd_extremes_shape';

/**
 * The model with ReduceMin, ReduceMax and Size of each tensor, gathered into three vectors
 * as extra outputs. Min/max calibration needs nothing else, and copying three scalars out of
 * ORT instead of every activation makes the tap run close to a plain forward pass (the OCR
 * classifier: 80 ms instead of 260–530 ms per batch of 32, for 63 M activation values).
 * Three vectors rather than three outputs a tensor, because onnxruntime-node's cost per
 * output (a JS tensor each) rivals a small model's whole forward pass.
 */
function withExtremes(model: ModelProto, tensors: string[]): ModelProto {
  const out = cloneModel(model);
  const graph = out.graph!;
  graph.initializer.push(makeTensor(EXTREMES_SHAPE, DataType.INT64, [1], BigInt64Array.of(1n)));
  const parts: [string[], string[], string[]] = [[], [], []];
  for (const t of tensors) {
    (['ReduceMin', 'ReduceMax', 'Size'] as const).forEach((op, k) => {
      const scalar = `${t}__calibd_${op}`;
      const vector = `${scalar}_1`;
      graph.node.push(
        makeNode(op, [t], [scalar], `${scalar}__node`, op === 'Size' ? {} : { keepdims: 0 }),
        makeNode('Reshape', [scalar, EXTREMES_SHAPE], [vector], `${vector}__node`),
      );
      parts[k].push(vector);
    });
  }
  EXTREMES.forEach((name, k) => {
    graph.node.push(makeNode('Concat', parts[k], [name], `${name}__node`, { axis: 0 }));
    graph.output.push(valueInfo(name, k === 2 ? DataType.INT64 : DataType.FLOAT));
  });
  return out;
}

export class Calibrator {
  private collectors: CollectorSet;
  private means = new Map<string, ChannelMeanObserver>();
  private biasDeltas: Map<string, Float64Array> | null = null;
  private observed = 0;
  private rejected = 0;
  /** Intervals outside which a tensor's readers saturate (quant/saturation.ts). */
  private readonly bounds: Map<string, Range>;
  private clampBuffer = new Float32Array(0);
  /** Bytes one sample of each measured tensor takes, once the first sample has been seen. */
  private tensorBytes: Map<string, number> | null = null;
  /** Their sum: the bytes one sample costs. */
  private sampleBytes = 0;
  /** Input elements of the sample the sizes were learnt from. */
  private probeInput: number | null = null;
  /** Tap groups for the last scaled sample count asked for (the daemon asks per sample). */
  private groupsFor: { count: number; groups: (string[] | null)[] } | null = null;
  /** Activation bytes fetched since the last garbage collection. */
  private fetchedSinceCollect = 0;
  /**
   * Tensors the tap can thin (rank 4), each with whether it is thinned: decided on its first
   * sample from its size, so small tensors keep every value (undefined until then).
   */
  private readonly thinning: Map<string, boolean | undefined>;

  private constructor(
    readonly source: ModelProto,
    readonly prepared: ModelProto,
    readonly plan: QuantizationPlan,
    private tap: ActivationTap,
    /** The model taps are built on: the prepared graph with any channel-mean outputs. */
    private readonly tapBase: ModelProto,
    readonly options: CalibrateOptions,
    private readonly sourceSha: string,
    private readonly measured: string[],
    /** The tap yields each tensor's extremes rather than its values (min/max collectors). */
    private readonly extremesOnly: boolean,
    /** Tensors whose per-channel means the tap yields, for bias correction. */
    private readonly meanInputs: string[],
    /** Conv pairs equalized, whether from measured ranges, and the tensors rescaled. */
    private readonly equalized: Equalized,
    /** Input channel means from BatchNorm statistics (data-free bias correction). */
    private readonly bnMeans: Map<string, Float64Array>,
    thinnable: string[],
  ) {
    this.thinning = new Map(thinnable.map((t) => [t, undefined]));
    this.collectors = new CollectorSet(rangeMethodOf(options.method), options);
    this.resetMeans();
    this.bounds = saturationIntervals(new GraphIndex(prepared.graph!), measured);
  }

  /** `data` with values beyond the tensor's saturation interval moved onto its bounds. */
  private clamped(name: string, data: Float32Array): Float32Array {
    const b = this.bounds.get(name);
    if (!b) return data;
    if (this.clampBuffer.length < data.length) this.clampBuffer = new Float32Array(data.length);
    const out = this.clampBuffer.subarray(0, data.length);
    const lo = b.min;
    const hi = b.max;
    // Math.min/max compile to branch-free instructions; comparisons would mispredict.
    for (let i = 0; i < data.length; i++) out[i] = Math.min(hi, Math.max(lo, data[i]));
    return out;
  }

  private resetMeans(): void {
    this.means = new Map(this.meanInputs.map((t) => [t, new ChannelMeanObserver()]));
  }

  /** `samples` feed 'activations' equalization only; ranges are learnt by observe(). */
  static async create(fp32: ModelProto, given: CalibrateOptions, samples?: SampleSource): Promise<Calibrator> {
    // Resolved once, so every candidate of this calibrator uses the same weight range.
    const resolved = resolveTargetOptions(given);
    // TensorRT's INT8 is symmetric (quant/target.ts), and the MSE search scores that grid.
    const options: CalibrateOptions = { ...resolved, ...(resolved.target === 'tensorrt' ? { symmetricGrid: true } : {}) };
    if (!CALIBRATION_METHODS.includes(options.method)) {
      throw new OptionError(`unknown calibration method '${options.method}'`, {
        value: options.method,
        hint: `use one of ${CALIBRATION_METHODS.join(', ')}`,
      });
    }
    const { model: prepared, equalized } = await equalizedModel(await prepareModel(fp32, 'model', options.target), options, samples);
    const plan = planQuantization(prepared, options);
    const measured = tensorsToCalibrate(plan);
    const extremesOnly = rangeMethodOf(options.method) === 'minmax';
    const corrected = options.method !== 'datafree' && options.biasCorrection === 'analytical' ? biasCorrectedInputs(prepared, plan) : new Map<string, number>();
    const meanInputs = [...corrected.keys()];
    const thinnable = !extremesOnly && options.thinHistograms !== false ? rank4Tensors(prepared, measured) : [];
    const tapped = [
      ...(extremesOnly ? EXTREMES : [...measured, ...thinnable.flatMap(thinnedOutputs)]),
      ...meanInputs.map(channelMeanOutput),
    ];
    const tapBase = corrected.size ? withChannelMeans(prepared, corrected) : prepared;
    const tapModel = extremesOnly ? withExtremes(tapBase, measured) : withThinnedTaps(tapBase, thinnable);
    const tap = await ActivationTap.create(tapModel, tapped, { threads: options.threads ?? 1 });
    const bnMeans = options.biasCorrection === 'datafree' ? dataFreeMeans(fp32, prepared, plan, equalized.tensors) : new Map<string, Float64Array>();
    return new Calibrator(fp32, prepared, plan, tap, tapBase, options, sha256(serializeModel(fp32)), measured, extremesOnly, meanInputs, equalized, bnMeans, thinnable);
  }

  /**
   * What statistics of this calibrator are about: the measured tensors of the prepared graph
   * and how it was equalized. Devices with equal keys (and source SHA-256) merge exactly.
   */
  get graphKey(): string {
    return sha256(new TextEncoder().encode(JSON.stringify({ tensors: this.measured, equalization: this.equalizedAs, pairs: this.equalized.pairs })));
  }

  /** How the measured graph was equalized: 'none' when no pair was, whatever was asked. */
  get equalizedAs(): Equalization {
    return this.equalized.pairs > 0 ? this.equalized.from : 'none';
  }

  get sourceModelSha256(): string {
    return this.sourceSha;
  }

  /** The statistics so far as shareable plain data (calibration/shared-statistics.ts). */
  statisticsBundle(devices: string[]): StatisticsBundle {
    return statisticsBundle(this.collectors, { sourceModelSha256: this.sourceSha, graph: this.graphKey, equalization: this.equalizedAs, sampleCount: this.observed, devices });
  }

  /** Tensors whose ranges are measured. */
  get tensors(): string[] {
    return [...this.measured];
  }

  get sampleCount(): number {
    return this.observed;
  }

  /** Streams one batch through the tap into the collectors; returns the FP32 outputs. */
  async observe(batch: Batch): Promise<Map<string, ort.Tensor> | null> {
    const { batch: clean, dropped } = dropNonFinite(batch);
    this.rejected += dropped;
    if (!clean) return null;
    const feeds = toFeeds(clean);
    const count = clean[Object.keys(clean)[0]].dims[0];
    // Activations grow with the input (pages of different sizes): scale the learnt sizes.
    const inputPerSample = Object.values(clean).reduce((a, t) => a + t.data.length, 0) / count;
    this.probeInput ??= inputPerSample;
    let outputs: Map<string, ort.Tensor> | undefined;
    const sizes = this.tensorBytes ? null : new Map<string, number>();
    const groups = this.tapGroups(count * (inputPerSample / this.probeInput));
    // Past the first sample's probe, groups mean a sample outgrew the budget (tap.ts).
    if (this.tensorBytes && groups.length > 1) await this.tap.withoutArena();
    for (const group of groups) {
      const names = group ?? this.measured;
      // The first run of a batch also fetches the small extra outputs (channel means).
      const fetch = this.extremesOnly ? undefined : names.flatMap((t) => this.fetchedFor(t));
      const only = fetch && !outputs ? [...fetch, ...this.meanInputs.map(channelMeanOutput)] : fetch;
      const run = await this.tap.run(feeds, only);
      if (!outputs) for (const [t, observer] of this.means) observer.update(run.tensors.get(channelMeanOutput(t))!, count);
      outputs ??= run.outputs;
      this.decideThinning(run.tensors, names, count);
      this.learn(run.tensors, names);
      if (this.extremesOnly) {
        // Three scalars a tensor: nothing to free, but Size tells the tensor's bytes.
        const counts = run.tensors.get(EXTREMES[2]) as unknown as BigInt64Array;
        this.measured.forEach((name, i) => sizes?.set(name, (4 * Number(counts[i])) / count));
        continue;
      }
      for (const name of names) {
        // What later runs fetch for this tensor: its thinned values, if it is thinned.
        sizes?.set(name, (COPIES_PER_FETCH * run.tensors.get(this.countedOutput(name))!.byteLength) / count);
      }
      for (const t of fetch!) this.fetchedSinceCollect += COPIES_PER_FETCH * run.tensors.get(t)!.byteLength;
    }
    // In graph order, so groups follow the network.
    if (sizes) {
      this.learnSizes(new Map(this.measured.map((t) => [t, sizes.get(t)!])));
      await this.dropUnthinnedTaps();
    }
    this.releaseFetched();
    this.observed += count;
    if (!this.extremesOnly) return outputs!;
    // The model's own outputs only, not the extremes added to the tap.
    return new Map(this.prepared.graph!.output.map((o) => [o.name, outputs!.get(o.name)!]));
  }

  /**
   * The tensors to fetch per tap run for `count` samples' worth of the first sample's
   * activations (null: everything in one run).
   * The first sample is fetched in fixed groups to learn each tensor's size; afterwards
   * groups are packed to the memory budget, and are one group whenever the batch fits.
   */
  private tapGroups(count: number): (string[] | null)[] {
    if (this.extremesOnly) return [null];
    if (!this.tensorBytes) return probeGroups(this.measured);
    if (this.groupsFor?.count !== count) {
      const scaled = new Map([...this.tensorBytes].map(([t, b]) => [t, b * count]));
      const groups = tensorGroups(scaled, this.memoryBudgetBytes());
      this.groupsFor = { count, groups: groups.length === 1 ? [null] : groups };
    }
    return this.groupsFor.groups;
  }

  private learnSizes(bytes: Map<string, number>): void {
    this.tensorBytes = bytes;
    this.sampleBytes = [...bytes.values()].reduce((a, b) => a + b, 0);
  }

  /**
   * A full garbage collection once COLLECT_EVERY_BYTES (or a budget's worth) of activations
   * has been fetched: ORT's output buffers are invisible to V8's heap accounting, so nothing
   * else would free them in time.
   */
  private releaseFetched(): void {
    if (this.fetchedSinceCollect < Math.min(COLLECT_EVERY_BYTES, this.memoryBudgetBytes())) return;
    collectGarbage();
    this.fetchedSinceCollect = 0;
  }

  private memoryBudgetBytes(): number {
    return (this.options.maxMemoryMB ?? defaultMemoryBudgetMB()) * 2 ** 20;
  }

  /** Tap runs one sample takes: more than 1 when its activations alone exceed the budget. */
  get runsPerSample(): number {
    return this.tapGroups(1).length;
  }

  /** Samples per tap run: inside the memory budget, and no more than runs fastest (FAST_RUN_BYTES). */
  get batchSize(): number {
    const cap = this.options.batchSize ?? 32;
    if (!this.tensorBytes) return 1;
    return batchSizeFor(this.sampleBytes, Math.min(FAST_RUN_BYTES, this.memoryBudgetBytes()), cap);
  }

  /** Tap outputs one run fetches for tensor `t`: both forms until its thinning is decided. */
  private fetchedFor(t: string): string[] {
    const thin = this.thinning.get(t);
    if (!this.thinning.has(t) || thin === false) return [t];
    return thin ? thinnedOutputs(t) : [t, ...thinnedOutputs(t)];
  }

  /** The output whose values are counted for tensor `t`. */
  private countedOutput(t: string): string {
    return this.thinning.get(t) ? thinnedOutputs(t)[0] : t;
  }

  /** Thins each undecided candidate whose sample holds at least THIN_MIN_VALUES values. */
  private decideThinning(tensors: Map<string, Float32Array>, names: readonly string[], count: number): void {
    for (const t of names) {
      if (!this.thinning.has(t) || this.thinning.get(t) !== undefined) continue;
      this.thinning.set(t, tensors.get(t)!.length / count >= THIN_MIN_VALUES);
    }
  }

  /**
   * Rebuilds the tap with thinned outputs only for the tensors that are thinned. ORT runs
   * every node whatever is fetched, so the Slice and reductions of a candidate that stays
   * whole would cost time and arena memory on every run (the OCR classifier: all of its 90
   * maps are candidates and none is thinned).
   */
  private async dropUnthinnedTaps(): Promise<void> {
    const thinned = this.thinnedTensors;
    if (thinned.length === this.thinning.size) return;
    const tensors = [...this.measured, ...thinned.flatMap(thinnedOutputs), ...this.meanInputs.map(channelMeanOutput)];
    const tap = await ActivationTap.create(withThinnedTaps(this.tapBase, thinned), tensors, { threads: this.options.threads ?? 1 });
    await this.tap.release();
    this.tap = tap;
  }

  /** Tensors whose histograms count a thinned grid (for the profile). */
  get thinnedTensors(): string[] {
    return [...this.thinning].filter(([, thin]) => thin === true).map(([t]) => t);
  }

  /**
   * Feeds one run's tensors to the collectors. Extremes are kept as measured: ranges() narrows
   * them to the saturation intervals, and narrowing commutes with taking min and max.
   */
  private learn(tensors: Map<string, Float32Array>, names: readonly string[]): void {
    if (this.extremesOnly) {
      // One run fetches every tensor's extremes (tapGroups), in measured order.
      const [lo, hi] = [tensors.get(EXTREMES[0])!, tensors.get(EXTREMES[1])!];
      const size = tensors.get(EXTREMES[2]) as unknown as BigInt64Array;
      this.measured.forEach((name, i) => {
        // Inputs are finite; an activation that overflowed to ±Infinity (or NaN) leaves no
        // usable extremes for this batch, so the batch does not count for that tensor.
        if (Number.isFinite(lo[i]) && Number.isFinite(hi[i])) this.collectors.updateExtremes(name, lo[i], hi[i], Number(size[i]));
      });
      return;
    }
    // Histograms see the values clamped, so the range search counts the mass at a bound.
    for (const name of names) {
      if (!this.thinning.get(name)) {
        this.collectors.update(name, this.clamped(name, tensors.get(name)!));
        continue;
      }
      const [values, lo, hi] = thinnedOutputs(name).map((o) => tensors.get(o)!);
      const b = this.bounds.get(name);
      const clamp = (v: number) => (b ? Math.min(b.max, Math.max(b.min, v)) : v);
      this.collectors.updateSubset(name, this.clamped(name, values), clamp(lo[0]), clamp(hi[0]));
    }
  }

  /** Runs the FP32 tap without learning (held-out samples): returns the FP32 outputs. */
  async predict(batch: Batch): Promise<Map<string, ort.Tensor> | null> {
    const { batch: clean } = dropNonFinite(batch);
    if (!clean) return null;
    return (await this.tap.run(toFeeds(clean), [])).outputs;
  }

  /** Observes every sample; after the first, batches are sized to the memory budget. */
  async observeAll(source: SampleSource, onProgress?: (done: number, total: number) => void): Promise<void> {
    let done = 0;
    let rest = source;
    if (this.batchSize === 1 && source.count > 1) {
      for await (const batch of sliceSource(source, 0, 1).batches(1)) await this.observe(batch);
      onProgress?.((done = 1), source.count);
      rest = sliceSource(source, 1, source.count);
    }
    for await (const batch of rest.batches(this.batchSize)) {
      await this.observe(batch);
      done += batch[Object.keys(batch)[0]].dims[0];
      onProgress?.(done, source.count);
    }
  }

  /** Forgets old statistics by a factor, so ranges follow drifting inputs. */
  decay(factor: number): void {
    this.collectors.decay(factor);
    for (const m of this.means.values()) m.decay(factor);
  }

  /** Ranges from the statistics so far, each narrowed to where its readers still care. */
  ranges(): Map<string, Range> {
    return this.bounded(this.collectors.ranges());
  }

  private bounded(ranges: Map<string, Range>): Map<string, Range> {
    const r = new Map(ranges);
    for (const [t, b] of this.bounds) if (r.has(t)) r.set(t, clampRange(r.get(t)!, b));
    return r;
  }

  /** What a selection or per-layer analysis rebuilds variants from: the current statistics. */
  selectionInput(): SelectionInput {
    return { prepared: this.prepared, ranges: this.ranges(), options: this.options, stats: this.statistics() };
  }

  /** Statistics beyond ranges: the input means bias correction uses. */
  statistics(): QuantizeStatistics {
    const inputMeans = new Map<string, Float64Array>(this.bnMeans);
    for (const [t, m] of this.means) {
      const mean = m.mean();
      if (mean) inputMeans.set(t, mean);
    }
    return { ...(inputMeans.size ? { inputMeans } : {}), ...(this.biasDeltas ? { biasDeltas: this.biasDeltas } : {}) };
  }

  /**
   * Empirical bias correction from `source` (the calibration samples, observed already):
   * every later build uses the deltas. A no-op unless the options ask for it.
   */
  async correctBiases(source: SampleSource, onProgress?: (done: number, total: number) => void): Promise<void> {
    if (this.options.biasCorrection !== 'empirical' || this.options.method === 'datafree') return;
    this.biasDeltas = null;
    this.biasDeltas = await empiricalBiasDeltas(this.selectionInput(), source, { threads: this.options.threads, batchSize: this.batchSize, onProgress });
  }

  /**
   * Builds the INT8 model from the current statistics (or from given ranges). `exclude`
   * leaves further nodes FP32 (e.g. a selection's answer) without re-measuring anything.
   */
  build(ranges: Map<string, Range> = this.ranges(), extra: Partial<CalibrationProfile> = {}, exclude: string[] = []): CalibrationResult {
    const missing = tensorsToCalibrate(this.plan).filter((t) => !ranges.has(t));
    if (missing.length > 0) {
      throw new OptionError(`no statistics for ${missing.length} tensors (e.g. '${missing[0]}')`, {
        value: missing,
        hint: 'observe at least one sample before building a calibration',
      });
    }
    const excluded = [...(this.options.exclude ?? []), ...exclude.filter((n) => !(this.options.exclude ?? []).includes(n))];
    const o = { ...this.options, exclude: excluded };
    const plan = exclude.length ? planQuantization(this.prepared, o) : this.plan;
    const r = this.bounded(ranges);
    // Tensors that shared a producer's parameters may need their own once it is FP32.
    for (const [t, src] of this.plan.sharedWith) if (!r.has(t) && r.has(src)) r.set(t, r.get(src)!);
    const { model, params } = quantizeModel(this.prepared, plan, r, o, this.statistics());
    const tensors: Record<string, TensorCalibration> = {};
    for (const [name, p] of params) {
      tensors[name] = { min: p.range.min, max: p.range.max, scale: p.scale, zeroPoint: p.zeroPoint, type: p.type };
    }
    const profile: CalibrationProfile = {
      format: PROFILE_FORMAT,
      calibdVersion: calibdVersion(),
      createdAt: new Date().toISOString(),
      sourceModelSha256: this.sourceSha,
      method: o.method,
      options: {
        target: o.target ?? 'ort',
        perChannel: o.perChannel ?? true,
        symmetricActivations: o.symmetricActivations ?? false,
        activationType: o.activationType,
        reduceRange: o.reduceRange ?? false,
        weightRange: o.weightRange,
        saturationBounded: this.bounds.size,
        equalization: this.equalized.pairs > 0 ? this.equalized.from : 'none',
        ...(this.equalized.pairs > 0 ? { equalizedPairs: this.equalized.pairs } : {}),
        biasCorrection: this.meanInputs.length > 0 ? 'analytical' : this.biasDeltas ? 'empirical' : this.bnMeans.size > 0 ? 'datafree' : 'none',
        exclude: o.exclude ?? [],
        ...(o.minConvReduction ? { minConvReduction: o.minConvReduction } : {}),
        ...methodProfileOptions(o.method, o),
        ...(this.thinnedTensors.length ? { thinnedTensors: this.thinnedTensors.length } : {}),
      },
      sampleCount: this.observed,
      rejectedSamples: this.rejected,
      qdqDomain: plan.qdqDomain || 'ai.onnx',
      quantizedNodes: plan.nodes.length,
      excludedNodes: [...excluded, ...plan.smallConvs],
      tensors,
      ...(this.equalized.tensors.length ? { rescaledTensors: this.equalized.tensors } : {}),
      ...extra,
    };
    writeProfile(model, profile);
    return { model, profile, plan, ranges };
  }

  async release(): Promise<void> {
    await this.tap.release();
  }
}

/** The prepared graph after cross-layer equalization, as the options ask. */
interface Equalized {
  pairs: number;
  from: Equalization;
  tensors: string[];
}

async function equalizedModel(prepared: ModelProto, options: CalibrateOptions, samples?: SampleSource): Promise<{ model: ModelProto; equalized: Equalized }> {
  const want = options.equalization ?? 'none';
  if (want === 'none') return { model: prepared, equalized: { pairs: 0, from: 'none', tensors: [] } };
  const pairs = findEqualizationPairs(prepared);
  const measure = want === 'activations' && samples && samples.count > 0 && options.method !== 'datafree';
  const ranges = measure
    ? await measureChannelRanges(prepared, convInputRanks(prepared, pairs), samples, { threads: options.threads })
    : undefined;
  const { model, pairs: done } = equalizeModel(prepared, pairs, ranges);
  return { model, equalized: { pairs: done.length, from: measure ? 'activations' : 'weights', tensors: rescaledTensors(model, done) } };
}

/**
 * BatchNorm-implied channel means of the tensors the plan's Conv/Gemm nodes read, where the
 * original model has them and equalization has not rescaled the tensor.
 */
function dataFreeMeans(fp32: ModelProto, prepared: ModelProto, plan: QuantizationPlan, rescaled: string[]): Map<string, Float64Array> {
  const all = batchNormMeans(fp32);
  const out = new Map<string, Float64Array>();
  for (const t of biasCorrectedInputs(prepared, plan).keys()) if (all.has(t) && !rescaled.includes(t)) out.set(t, all.get(t)!);
  return out;
}

/** Every tensor that differs from the unequalized graph: each pair's middle tensor and its pre-Relu form. */
function rescaledTensors(model: ModelProto, pairs: EqualizationPair[]): string[] {
  const byName = new Map(model.graph!.node.map((n) => [n.name, n]));
  return [...new Set(pairs.flatMap((p) => [byName.get(p.producer)!.output[0], p.tensor]))];
}

/** One-shot calibration. `source` may be null only for the data-free method. */
export async function calibrate(fp32: ModelProto, source: SampleSource | null, options: CalibrateOptions): Promise<CalibrationResult> {
  const calibrator = await Calibrator.create(fp32, options, source ?? undefined);
  try {
    if (options.method === 'datafree') {
      await calibrator.observeAll(probeSource(calibrator.prepared, options), options.onProgress);
      const ranges = calibrator.ranges();
      // BN statistics beat synthetic probes wherever they exist; inputs follow the contract.
      for (const [t, r] of batchNormRanges(fp32, options.bnSigmas ?? 4)) if (ranges.has(t)) ranges.set(t, r);
      const inputRange = options.inputRange ?? { min: 0, max: 1 };
      for (const t of new GraphIndex(calibrator.prepared.graph!).graphInputs) if (ranges.has(t)) ranges.set(t, inputRange);
      const result = calibrator.build(ranges);
      // Probes are not data: record that no real sample was used.
      result.profile.sampleCount = 0;
      writeProfile(result.model, result.profile);
      return result;
    }
    if (!source || source.count === 0) {
      throw new OptionError(`method '${options.method}' needs samples`, {
        value: options.method,
        hint: 'pass sample data, or use --method datafree',
      });
    }
    await calibrator.observeAll(source, options.onProgress);
    if (calibrator.sampleCount === 0) {
      throw new OptionError('every sample held NaN or Infinity; nothing to calibrate from', {
        hint: 'check the sample data',
      });
    }
    await calibrator.correctBiases(source);
    return calibrator.build();
  } finally {
    await calibrator.release();
  }
}

// The work behind each CLI subcommand.

import type { ActivationTypeChoice, QuantTarget } from '../quant/index.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { CalibdError, OptionError, DataError } from '../common/index.js';
import {
  Calibrator, analyseLayers, calibrate, perSampleShapes, prepareModel, compareModels, parseMetric, selectInt8Nodes, sliceSource, fleetCalibration, fleetProfile, mergeStatistics, parseStatistics,
  type CalibrateOptions, type RangeMethod, type StatisticsBundle, type CalibrationMethod, type LayerReport, type SampleSource, type SelectionResult,
} from '../calibration/index.js';
import { readModel, writeModel, type ModelProto } from '../onnx/index.js';
import { preprocessFromArgument } from '../images/index.js';
import { checkTargetOptions, readProfile, dequantizedName, type BiasCorrection, type CalibrationProfile, type Equalization, type WeightRangeChoice } from '../quant/index.js';

import { dataSource, readLabels } from './data.js';
import { closest } from './suggest.js';
import { refuseQuantized } from './quantized.js';
import { formatInspect, formatEval, formatLayers, formatSelection } from './format.js';

interface CalibrateArgs {
  model: string;
  data: string[];
  method: CalibrationMethod;
  target?: QuantTarget;
  perChannel?: boolean;
  perTensor?: boolean;
  samples?: number;
  exclude?: string[];
  symmetricActivations?: boolean;
  activationType?: ActivationTypeChoice;
  reduceRange?: boolean;
  weightRange?: WeightRangeChoice;
  biasCorrection?: BiasCorrection;
  equalize?: Equalization;
  metric?: string;
  budget?: number;
  percentile?: number;
  bins?: number;
  inputRange?: string;
  inputShape?: string[];
  batchSize?: number;
  maxMemory?: number;
  exactHistograms?: boolean;
  threads?: number;
  out: string;
  auto?: boolean;
  report?: boolean;
  budgetAgreement?: number;
  budgetSqnr?: number;
  preprocess?: string;
  stats?: string[];
}

export async function calibrateCommand(a: CalibrateArgs): Promise<void> {
  if (a.perChannel && a.perTensor) {
    throw new OptionError('--per-channel and --per-tensor exclude each other', { hint: 'pass one of them' });
  }
  if (a.auto && a.target === 'tensorrt') {
    // --auto keeps INT8 where it is faster on this CPU with ONNX Runtime; TensorRT decides on the GPU.
    throw new OptionError('--auto times INT8 against FP32 with ONNX Runtime on this CPU, which says nothing about TensorRT', {
      value: 'auto',
      hint: 'drop --auto with --target tensorrt (exclude nodes with --exclude instead)',
    });
  }
  checkTargetOptions(a);
  checkOutFolder(a.out);
  const model = readModel(a.model);
  refuseQuantized(model, a.model, 'with --model');
  if (a.exclude?.length) checkExcludes(model, a.exclude);
  if (a.stats?.length) return calibrateFromStatistics(model, a);
  if (a.method !== 'datafree' && a.data.length === 0) {
    throw new OptionError(`--method ${a.method} needs --data`, { hint: 'pass --data DIR, or use --method datafree' });
  }
  const preprocess = a.preprocess === undefined ? undefined : preprocessFromArgument(a.preprocess);
  const source = a.method === 'datafree' ? null : await dataSource(model, a.data, { limit: a.samples, preprocess });
  const bar = process.stderr.isTTY ? new SingleBar({ format: 'calibrating [{bar}] {value}/{total} samples', clearOnComplete: true }, Presets.shades_classic) : null;
  const started = Date.now();
  bar?.start(source?.count ?? 64, 0);
  const options: CalibrateOptions = { ...calibrateOptions(a), onProgress: (done) => bar?.update(done) };
  try {
    const result = a.auto ? await calibrateAuto(model, source, options, a) : await calibrate(model, source, options);
    bar?.stop();
    writeModel(result.model, a.out);
    const p = result.profile;
    process.stdout.write(
      `wrote ${a.out}: ${p.method}, ${p.sampleCount} samples, ${p.quantizedNodes} nodes in INT8, ` +
        `${Object.keys(p.tensors).length} activation tensors, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    const selection = p.selection as SelectionResult | undefined;
    if (selection) process.stdout.write(a.report ? formatSelection(selection, true) : formatSelection(selection, false));
  } finally {
    bar?.stop();
  }
}

/** The calibration options the command line gives. */
function calibrateOptions(a: CalibrateArgs): CalibrateOptions {
  return {
    method: a.method,
    target: a.target,
    perChannel: !a.perTensor,
    exclude: a.exclude,
    symmetricActivations: a.symmetricActivations,
    activationType: a.activationType,
    reduceRange: a.reduceRange,
    weightRange: a.weightRange,
    biasCorrection: a.biasCorrection,
    equalization: a.equalize,
    percentile: a.percentile,
    bins: a.bins,
    inputRange: a.inputRange ? parseRange(a.inputRange) : undefined,
    ...(a.inputShape?.length ? { inputShapes: perSampleShapes(parseInputShapes(a.inputShape)) } : {}),
    batchSize: a.batchSize,
    maxMemoryMB: a.maxMemory,
    ...(a.exactHistograms ? { thinHistograms: false } : {}),
    threads: a.threads,
  };
}

/**
 * Calibrates on all but a held-out slice of the samples (a fifth, 8 to 200), then lets the
 * selection decide, on the held-out slice and with real timing, which nodes stay FP32.
 */
async function calibrateAuto(model: ModelProto, source: SampleSource | null, options: CalibrateOptions, a: CalibrateArgs) {
  if (!source || source.count < 16) {
    throw new OptionError('--auto needs at least 16 samples in --data', { value: source?.count ?? 0, hint: 'a fifth of them (8 to 200) is held out to validate the selection' });
  }
  const holdout = Math.min(200, Math.max(8, Math.floor(source.count / 5)));
  // Said up front: otherwise 500 samples given and 400 in the profile look like a loss.
  process.stderr.write(`auto: calibrating on ${source.count - holdout} of ${source.count} samples; ${holdout} held out to validate the selection\n`);
  const calibrator = await Calibrator.create(model, options);
  try {
    const calibration = sliceSource(source, 0, source.count - holdout);
    await calibrator.observeAll(calibration, options.onProgress);
    await calibrator.correctBiases(calibration);
    const selection = await selectInt8Nodes(
      calibrator.selectionInput(),
      sliceSource(source, source.count - holdout, source.count),
      {
        budget: { agreement: a.budgetAgreement, sqnrDb: a.budgetSqnr, value: a.budget },
        metric: a.metric ? parseMetric(a.metric) : undefined,
        threads: a.threads,
        log: a.report ? (s) => process.stderr.write(`auto: ${s}\n`) : undefined,
      },
    );
    return calibrator.build(calibrator.ranges(), { selection }, selection.exclude);
  } finally {
    await calibrator.release();
  }
}

/**
 * `--stats`: ranges from saved statistics of devices, merged exactly; no sample is read.
 * The statistics decide the graph they were measured on (equalization); bias correction
 * from samples is not possible without them, so only the data-free kind applies.
 */
async function calibrateFromStatistics(model: ModelProto, a: CalibrateArgs): Promise<void> {
  if (a.data.length) throw new OptionError('--stats and --data exclude each other', { hint: 'calibrate from samples or from statistics, not both' });
  if (a.method === 'datafree' || a.auto) throw new OptionError(`--stats does not go with ${a.auto ? '--auto' : '--method datafree'}`, { hint: 'use --method minmax, percentile, entropy or mse' });
  const merged = mergeStatistics(a.stats!.map(readStatisticsFile));
  const calibrator = await Calibrator.create(model, {
    ...calibrateOptions(a),
    biasCorrection: a.biasCorrection === 'datafree' ? 'datafree' : 'none',
    equalization: merged.equalization === 'weights' ? 'weights' : 'none',
  });
  try {
    if (merged.sourceModelSha256 !== calibrator.sourceModelSha256) {
      throw new CalibdError('model-mismatch', `the statistics are of model sha256 ${merged.sourceModelSha256.slice(0, 12)}…, not of ${a.model} (${calibrator.sourceModelSha256.slice(0, 12)}…)`, { value: a.model, hint: 'pass the FP32 model the devices serve' });
    }
    if (merged.graph !== calibrator.graphKey) {
      throw new CalibdError('model-mismatch', 'the statistics were measured on another prepared graph (equalization, --exclude or --target differ)', { value: a.exclude ?? [], hint: 'use the devices\' recalibration settings' });
    }
    const calibration = fleetCalibration(merged, a.method as RangeMethod);
    const result = calibrator.build(new Map(calibration.ranges.map(([t, min, max]) => [t, { min, max }])), fleetProfile(calibration));
    writeModel(result.model, a.out);
    process.stdout.write(`wrote ${a.out}: ${calibration.method} from the statistics of ${merged.devices.length} devices (${merged.sampleCount} samples), ${result.profile.quantizedNodes} nodes in INT8\n`);
  } finally {
    await calibrator.release();
  }
}

function readStatisticsFile(file: string): StatisticsBundle {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`--stats ${file} cannot be read: ${(err as Error).message}`, { value: file, hint: 'pass a file written by `calibd fleet stats --out`' });
  }
  try {
    return parseStatistics(JSON.parse(text), file);
  } catch (err) {
    if (err instanceof DataError || err instanceof OptionError) throw err;
    throw new DataError(`--stats ${file} is not JSON: ${(err as Error).message}`, { value: file, hint: 'pass a file written by `calibd fleet stats --out`' });
  }
}

/** The folder --out writes into must exist, checked before any work so a long run is not lost. */
export function checkOutFolder(out: string): void {
  const folder = dirname(resolve(out));
  let isFolder = false;
  try {
    isFolder = statSync(folder).isDirectory();
  } catch {
    // missing: refused below
  }
  if (!isFolder) throw new OptionError(`--out ${out}: folder ${dirname(out)} does not exist`, { value: out, hint: 'create the folder first, or write somewhere that exists' });
}

/** Every --exclude pattern must name a node or an op type of the model: a typo would otherwise be ignored. */
function checkExcludes(model: ModelProto, patterns: string[]): void {
  const known = new Set(model.graph!.node.flatMap((n) => [n.name, n.opType]).filter((s) => s));
  for (const p of patterns) {
    if (known.has(p)) continue;
    const near = closest(p, known);
    throw new OptionError(`--exclude ${p} matches no node name or op type${near ? ` (did you mean ${near}?)` : ''}`, {
      value: p,
      hint: `op types in this model: ${[...new Set(model.graph!.node.map((n) => n.opType))].sort().join(', ')}`,
    });
  }
}

/** `NAME=1x3x640x640` once per input → { NAME: [1, 3, 640, 640] }. */
export function parseInputShapes(specs: string[]): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const dims = eq > 0 ? spec.slice(eq + 1).split('x').map(Number) : [];
    if (eq <= 0 || dims.length === 0 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
      throw new OptionError(`--input-shape '${spec}' is not NAME=DxDx…`, { value: spec, hint: 'e.g. --input-shape x=1x3x640x640 (batch axis first)' });
    }
    shapes[spec.slice(0, eq)] = dims;
  }
  return shapes;
}

function parseRange(s: string): { min: number; max: number } {
  const [lo, hi] = s.split(',').map(Number);
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo >= hi) {
    throw new OptionError(`--input-range '${s}' is not MIN,MAX`, { value: s, hint: 'e.g. --input-range 0,1' });
  }
  return { min: lo, max: hi };
}

interface EvalArgs {
  fp32: string;
  int8: string;
  data: string[];
  labels?: string;
  samples?: number;
  threads?: number;
  metric?: string;
  perLayer?: boolean;
  json?: boolean;
  preprocess?: string;
}

export async function evalCommand(a: EvalArgs): Promise<void> {
  if (a.data.length === 0) throw new OptionError('eval needs --data', { hint: 'pass --data DIR or FILE.npy' });
  for (const f of [a.fp32, a.int8]) if (!existsSync(f)) throw new DataError(`model ${f} does not exist`, { value: f, hint: 'check the path' });
  const fp32 = readModel(a.fp32);
  const int8 = readModel(a.int8);
  const profile = readProfile(int8, a.int8);
  const preprocess = a.preprocess === undefined ? undefined : preprocessFromArgument(a.preprocess);
  const source = await dataSource(fp32, a.data, { limit: a.samples, preprocess });
  const labels = a.labels ? readLabels(a.labels, [...source.files.values()][0]) : undefined;
  // The INT8 graph was built from the optimised FP32 graph, so compare tensors there.
  const reference = profile ? await prepareModel(fp32, a.fp32, profile.options.target === 'tensorrt' ? 'tensorrt' : 'ort') : fp32;
  const rescaled = new Set(profile?.rescaledTensors ?? []);
  const pairs = new Map(Object.keys(profile?.tensors ?? {}).filter((t) => !rescaled.has(t)).map((t) => [t, dequantizedName(t)]));
  const metric = a.metric ? parseMetric(a.metric) : undefined;
  const result = await compareModels(reference, int8, source, {
    labels,
    perTensor: pairs.size > 0,
    int8Tensors: pairs,
    threads: a.threads,
    metric,
  });
  let layers: LayerReport[] | undefined;
  if (a.perLayer) {
    if (!profile) throw new DataError(`${a.int8} holds no calibd calibration, so its layers cannot be rebuilt one by one`, { value: a.int8, hint: 'pass an INT8 model written by `calibd calibrate`' });
    if (rescaled.size > 0) throw new DataError(`${a.int8} was calibrated on an equalized graph, which --per-layer cannot rebuild from the FP32 model`, { value: a.int8, hint: 'calibrate with --equalize none to analyse its layers' });
    layers = await analyseLayers(layerInput(reference, profile), source, { threads: a.threads });
  }
  // Bias deltas are not stored in the model, so the per-layer variants are rebuilt without them.
  const note = layers && profile?.options.biasCorrection && profile.options.biasCorrection !== 'none' ? `(per-layer variants rebuilt without ${String(profile.options.biasCorrection)} bias correction)\n` : '';
  process.stdout.write(a.json ? JSON.stringify({ ...result, ...(layers ? { layers } : {}) }, null, 2) + '\n' : formatEval(result) + (layers ? formatLayers(layers) + note : ''));
}

/** The ranges and options an INT8 model was built with, from its calibration record. */
function layerInput(prepared: ReturnType<typeof readModel>, p: CalibrationProfile) {
  const o = p.options as Record<string, unknown>;
  const ranges = new Map(Object.entries(p.tensors).map(([t, c]) => [t, { min: c.min, max: c.max }]));
  return {
    prepared,
    ranges,
    options: {
      target: o.target as QuantTarget | undefined,
      perChannel: o.perChannel as boolean | undefined,
      symmetricActivations: o.symmetricActivations as boolean | undefined,
      activationType: o.activationType as ActivationTypeChoice | undefined,
      reduceRange: o.reduceRange as boolean | undefined,
      weightRange: o.weightRange as WeightRangeChoice | undefined,
      exclude: p.excludedNodes,
      minConvReduction: o.minConvReduction as number | undefined,
    },
  };
}

export async function inspectCommand(path: string, o: { json?: boolean }): Promise<void> {
  const model = readModel(path);
  const profile = readProfile(model, path);
  if (!profile) {
    throw new DataError(`${path} holds no calibd calibration`, { value: path, hint: 'calibrate it with `calibd calibrate`' });
  }
  process.stdout.write(o.json ? JSON.stringify(profile, null, 2) + '\n' : formatInspect(path, profile));
}

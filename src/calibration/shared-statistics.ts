// Calibration statistics as plain data that devices share instead of their inputs, and the
// merge that turns many devices' statistics into one calibration.
//
// A bundle holds one observer per measured tensor: extremes for minmax, or the histogram for
// the others. Histograms have zero-anchored power-of-two bins (histogram.ts), so merging the
// bundles of many devices gives exactly the histogram of all their data together; ranges are
// then estimated centrally with any method the statistics allow. Counts go out sparse (runs
// of empty bins are skipped), the one part of a bundle that grows with the model.
//
// Nothing in a bundle is an input: a histogram of a tensor's values holds counts per bin,
// never a value's position in a sample.

import { DataError, OptionError } from '../common/index.js';
import { CollectorSet } from './collector.js';
import type { Range } from './estimators.js';
import type { HistogramJSON } from './histogram.js';
import type { CalibrationProfile } from '../quant/index.js';
import { RANGE_METHODS, checkMethod, observerOf, type RangeMethod, type ResolvedMethodOptions } from './methods.js';

export const STATISTICS_FORMAT = 'calibd-stats';
export const FLEET_CALIBRATION_FORMAT = 'calibd-ranges';

/** What a device measured, where, with what and on how many samples. */
export interface StatisticsBundle {
  format: typeof STATISTICS_FORMAT;
  version: 1;
  /** SHA-256 of the FP32 model the statistics were measured on. */
  sourceModelSha256: string;
  /** Digest of the prepared graph's measured tensors (see Calibrator.graphKey): equal keys merge. */
  graph: string;
  /** How the graph was equalized before measuring ('none' or 'weights' on a device). */
  equalization: string;
  method: RangeMethod;
  options: ResolvedMethodOptions;
  /** Samples observed (before any fading). */
  sampleCount: number;
  /** The devices (or files) whose statistics are in the bundle. */
  devices: string[];
  createdAt: string;
  tensors: Array<{ name: string; state: unknown }>;
}

/** Ranges computed centrally from merged statistics: what an `apply` command carries. */
export interface FleetCalibration {
  format: typeof FLEET_CALIBRATION_FORMAT;
  version: 1;
  sourceModelSha256: string;
  graph: string;
  method: RangeMethod;
  devices: string[];
  sampleCount: number;
  createdAt: string;
  /** [tensor, min, max] per measured tensor. */
  ranges: Array<[string, number, number]>;
}

const HISTOGRAM_HINT = 'pass statistics saved by `calibd fleet stats` (format calibd-stats, version 1)';

/** A bundle of `set`'s statistics. */
export function statisticsBundle(set: CollectorSet, about: { sourceModelSha256: string; graph: string; equalization: string; sampleCount: number; devices: string[] }): StatisticsBundle {
  const json = set.toJSON();
  return {
    format: STATISTICS_FORMAT,
    version: 1,
    sourceModelSha256: about.sourceModelSha256,
    graph: about.graph,
    equalization: about.equalization,
    method: set.method,
    options: { ...json.options },
    sampleCount: about.sampleCount,
    devices: [...about.devices],
    createdAt: new Date().toISOString(),
    tensors: json.tensors.map(({ name, collector }) => ({ name, state: compactState((collector as { state: unknown }).state) })),
  };
}

/**
 * Significant digits a faded (non-integer) count travels with. A daemon's counts are
 * weights faded sample by sample, full doubles that deflate poorly; six digits halve the
 * message, and a relative change of 5e-7 in a bin's weight moves no estimator. Integer
 * counts (nothing faded) travel exactly.
 */
const COUNT_DIGITS = 6;

function compactCount(c: number): number {
  return Number.isInteger(c) ? c : Number(c.toPrecision(COUNT_DIGITS));
}

/**
 * Dense histogram counts → [zeros skipped, count, zeros skipped, count, …]. The total is
 * the sum of the counts sent, so quantiles stay consistent with them.
 */
function compactState(state: unknown): unknown {
  const s = state as Partial<HistogramJSON>;
  if (s?.kind !== 'histogram' || !Array.isArray(s.counts)) return state;
  const sparse: number[] = [];
  let gap = 0;
  let total = 0;
  let exact = true;
  for (const c of s.counts) {
    if (c === 0) gap++;
    else {
      const sent = compactCount(c);
      exact &&= sent === c;
      sparse.push(gap, sent);
      total += sent;
      gap = 0;
    }
  }
  const { counts: _dense, ...rest } = s;
  return { ...rest, ...(exact ? {} : { total }), sparse };
}

function denseState(state: unknown, name: string): unknown {
  const s = state as { kind?: unknown; sparse?: unknown };
  if (s?.kind !== 'histogram') return state;
  if (!Array.isArray(s.sparse) || s.sparse.length % 2 !== 0) throw new DataError(`statistics of '${name}': bad sparse counts`, { value: name, hint: HISTOGRAM_HINT });
  const counts: number[] = [];
  for (let i = 0; i < s.sparse.length; i += 2) {
    const gap = s.sparse[i] as number;
    if (!Number.isSafeInteger(gap) || gap < 0 || counts.length + gap > 1 << 20) throw new DataError(`statistics of '${name}': bad sparse counts`, { value: gap, hint: HISTOGRAM_HINT });
    for (let k = 0; k < gap; k++) counts.push(0);
    counts.push(s.sparse[i + 1] as number);
  }
  const { sparse: _s, ...rest } = s;
  return { ...rest, counts };
}

/** Checks a bundle's envelope; the statistics themselves are checked when read. */
export function parseStatistics(json: unknown, source = 'statistics'): StatisticsBundle {
  const b = json as Partial<StatisticsBundle> | null;
  const bad = (what: string, value: unknown): never => {
    throw new DataError(`${source}: ${what}`, { value, hint: HISTOGRAM_HINT });
  };
  if (typeof b !== 'object' || b === null || b.format !== STATISTICS_FORMAT) bad('not calibd statistics', (b as { format?: unknown } | null)?.format);
  if (b!.version !== 1) bad(`statistics version ${String(b!.version)} is not supported`, b!.version);
  if (typeof b!.sourceModelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(b!.sourceModelSha256)) bad('no source model SHA-256', b!.sourceModelSha256);
  if (typeof b!.graph !== 'string') bad('no graph key', b!.graph);
  if (!Number.isSafeInteger(b!.sampleCount) || b!.sampleCount! < 0) bad('bad sample count', b!.sampleCount);
  if (!Array.isArray(b!.devices) || !b!.devices.every((d) => typeof d === 'string')) bad('bad device list', b!.devices);
  if (!Array.isArray(b!.tensors)) bad('no tensors', b!.tensors);
  checkMethod(b!.method, RANGE_METHODS, 'range method');
  return b as StatisticsBundle;
}

/**
 * The bundle's statistics as collectors of `method`. Histograms serve every method (their
 * extremes are exact, so minmax too); extremes serve minmax only.
 */
export function collectorsOf(bundle: StatisticsBundle, method: RangeMethod = bundle.method): CollectorSet {
  const from = observerOf(bundle.method).kind;
  if (from === 'extremes' && observerOf(method).kind !== 'extremes') {
    throw new OptionError(`statistics gathered with '${bundle.method}' hold extremes only; '${method}' needs histograms`, {
      value: method,
      hint: "use --method minmax, or gather the statistics with a histogram method (percentile, entropy, mse)",
    });
  }
  const tensors = bundle.tensors.map(({ name, state }) => {
    if (typeof name !== 'string') throw new DataError('statistics: a tensor without a name', { value: name, hint: HISTOGRAM_HINT });
    let s = denseState(state, name);
    if (from === 'histogram' && observerOf(method).kind === 'extremes') s = extremesOfHistogram(s as HistogramJSON);
    return { name, collector: { kind: 'collector', version: 1, method, options: bundle.options, state: s } };
  });
  return CollectorSet.fromJSON({ kind: 'collector-set', version: 1, method, options: bundle.options, tensors });
}

function extremesOfHistogram(h: HistogramJSON): unknown {
  return { kind: 'minmax', version: 1, min: h.seen > 0 ? h.min : null, max: h.seen > 0 ? h.max : null, samples: h.seen };
}

/** Why `b` cannot be merged with `ref`, or null when it can. */
export function mergeRefusal(ref: StatisticsBundle, b: StatisticsBundle): string | null {
  if (b.sourceModelSha256 !== ref.sourceModelSha256) return `another model (sha256 ${b.sourceModelSha256.slice(0, 12)}…, not ${ref.sourceModelSha256.slice(0, 12)}…)`;
  // Equalized from its own samples, each device's graph has its own channel scales.
  if (b.equalization === 'activations' || ref.equalization === 'activations') return 'a graph equalized from its own samples (equalization: activations)';
  if (b.graph !== ref.graph) return 'another prepared graph (its equalization or excluded nodes differ)';
  const kind = observerOf(b.method).kind;
  if (kind !== observerOf(ref.method).kind) return `${kind} statistics (method ${b.method}) cannot merge with ${observerOf(ref.method).kind} ones (method ${ref.method})`;
  if (kind === 'histogram' && b.options.bins !== ref.options.bins) return `histograms of ${b.options.bins} bins, not ${ref.options.bins}`;
  return null;
}

/**
 * Merges bundles exactly (histogram counts added bin by bin). Every bundle must agree on the
 * model, the graph and the kind of statistic: mergeRefusal says why one does not.
 */
export function mergeStatistics(bundles: StatisticsBundle[]): StatisticsBundle {
  if (bundles.length === 0) throw new OptionError('no statistics to merge', { hint: 'collect statistics from at least one device' });
  const merge = new RunningMerge(bundles[0]);
  for (const b of bundles.slice(1)) {
    const refusal = mergeRefusal(merge.ref, b);
    if (refusal) throw new OptionError(`cannot merge the statistics of ${b.devices.join(', ') || 'a bundle'}: ${refusal}`, { value: b.devices, hint: 'merge only statistics of the same model and calibration settings' });
    merge.add(b);
  }
  return merge.bundle();
}

/** Bundles that can merge, merged as they come: the first one's envelope, and the running sums. */
class RunningMerge {
  /** The first bundle's envelope only: the statistics live in `set`. */
  readonly ref: StatisticsBundle;
  private readonly set: CollectorSet;
  readonly devices: string[];
  private samples: number;

  constructor(first: StatisticsBundle) {
    this.ref = { ...first, tensors: [] };
    this.set = collectorsOf(first);
    this.devices = [...first.devices];
    this.samples = first.sampleCount;
  }

  add(b: StatisticsBundle): void {
    this.set.merge(collectorsOf(b, this.ref.method));
    this.devices.push(...b.devices);
    this.samples += b.sampleCount;
  }

  bundle(): StatisticsBundle {
    const { sourceModelSha256, graph, equalization } = this.ref;
    return statisticsBundle(this.set, { sourceModelSha256, graph, equalization, sampleCount: this.samples, devices: this.devices });
  }
}

/**
 * Merges bundles as they arrive, one running merge per kind of statistics (model, graph,
 * statistic), so an operator holds one bundle's worth per model however many devices
 * answer. result() keeps the group of one model and lists everyone else with the reason.
 */
export class StatisticsMerger {
  private readonly groups: RunningMerge[] = [];
  private readonly empty: string[] = [];

  add(b: StatisticsBundle): void {
    if (b.sampleCount === 0) {
      this.empty.push(...b.devices);
      return;
    }
    const g = this.groups.find((x) => mergeRefusal(x.ref, b) === null);
    if (g) g.add(b);
    else this.groups.push(new RunningMerge(b));
  }

  /**
   * The merge of the devices serving `sha256` (default: the model most devices serve), and
   * why each other device was left out.
   */
  result(sha256?: string): { merged: StatisticsBundle | null; skipped: Array<{ device: string; reason: string }> } {
    const candidates = this.groups.filter((g) => sha256 === undefined || g.ref.sourceModelSha256 === sha256);
    const chosen = candidates.sort((a, b) => b.devices.length - a.devices.length)[0];
    const skipped = this.empty.map((device) => ({ device, reason: 'no samples yet' }));
    for (const g of this.groups) {
      if (g === chosen) continue;
      const reason = chosen ? mergeRefusal(chosen.ref, g.ref) ?? 'fewer devices than the group merged' : `serves another model than ${sha256}`;
      skipped.push(...g.devices.map((device) => ({ device, reason })));
    }
    return { merged: chosen ? chosen.bundle() : null, skipped };
  }
}

/** Ranges from (merged) statistics with `method`: what every device of the fleet applies. */
export function fleetCalibration(bundle: StatisticsBundle, method: RangeMethod = bundle.method): FleetCalibration {
  const ranges = collectorsOf(bundle, method).ranges();
  return {
    format: FLEET_CALIBRATION_FORMAT,
    version: 1,
    sourceModelSha256: bundle.sourceModelSha256,
    graph: bundle.graph,
    method,
    devices: [...bundle.devices],
    sampleCount: bundle.sampleCount,
    createdAt: new Date().toISOString(),
    ranges: [...ranges].map(([t, r]) => [t, r.min, r.max]),
  };
}

/** Checks a fleet calibration's envelope and ranges; returns them as a map. */
export function parseFleetCalibration(json: unknown): { calibration: FleetCalibration; ranges: Map<string, Range> } {
  const c = json as Partial<FleetCalibration> | null;
  const hint = 'send the output of `calibd fleet calibrate` (format calibd-ranges, version 1)';
  const bad = (what: string, value: unknown): never => {
    throw new DataError(`fleet calibration: ${what}`, { value, hint });
  };
  if (typeof c !== 'object' || c === null || c.format !== FLEET_CALIBRATION_FORMAT) bad('not a calibd fleet calibration', (c as { format?: unknown } | null)?.format);
  if (c!.version !== 1) bad(`version ${String(c!.version)} is not supported`, c!.version);
  if (typeof c!.sourceModelSha256 !== 'string' || typeof c!.graph !== 'string') bad('no model SHA-256 or graph key', c!.sourceModelSha256);
  checkMethod(c!.method, RANGE_METHODS, 'range method');
  if (!Array.isArray(c!.ranges)) bad('no ranges', c!.ranges);
  const ranges = new Map<string, Range>();
  for (const r of c!.ranges!) {
    if (!Array.isArray(r) || r.length !== 3 || typeof r[0] !== 'string' || !Number.isFinite(r[1]) || !Number.isFinite(r[2]) || r[1] > r[2]) bad('a range is not [name, min, max] with min <= max', r);
    if (ranges.has(r[0])) bad(`tensor '${r[0]}' appears twice`, r[0]);
    ranges.set(r[0], { min: r[1], max: r[2] });
  }
  return { calibration: c as FleetCalibration, ranges };
}

/** What a fleet calibration adds to the profile: its method, and whose statistics it merged. */
export function fleetProfile(c: FleetCalibration): Partial<CalibrationProfile> {
  return { method: c.method, sampleCount: c.sampleCount, fleet: { devices: c.devices.length, sampleCount: c.sampleCount, createdAt: c.createdAt } };
}

// Per-tensor statistic collectors used by the calibration pipeline: one object per tensor
// that is fed batches of values, merged across workers or devices, faded under drift,
// serialised as plain data, and finally asked for a range. `minmax` keeps only extremes;
// the other methods keep a fixed-size Histogram and run their estimator in range(), so
// memory is O(bins) per tensor whatever the number of samples.

import { DataError, OptionError } from '../common/index.js';
import {
  checkMseLevels,
  checkPercentile,
  checkQuantLevels,
  entropyRange,
  mseRange,
  percentileRange,
  type Range,
} from './estimators.js';
import { Histogram } from './histogram.js';
import { MinMaxObserver, MovingAverageMinMaxObserver } from './minmax.js';

export type RangeMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';
export const RANGE_METHODS: readonly RangeMethod[] = ['minmax', 'percentile', 'entropy', 'mse'];

export interface CollectorOptions {
  /** Histogram bins (percentile, entropy, mse); default 2048. */
  bins?: number;
  /** Percentile for 'percentile'; default 99.999. */
  percentile?: number;
  /** One-sided levels for 'entropy'; default 128. */
  quantLevels?: number;
  /** Grid points for 'mse'; default 256. */
  levels?: number;
  /** 'minmax' only: a number in (0, 1] selects the moving-average observer. */
  movingAverage?: number | null;
}

export interface TensorCollector {
  readonly method: RangeMethod;
  update(data: ArrayLike<number>): void;
  merge(other: TensorCollector): void;
  decay(factor: number): void;
  range(): Range;
  /** Finite values seen (not decayed). */
  readonly samples: number;
  toJSON(): unknown;
}

type Resolved = Required<Omit<CollectorOptions, 'movingAverage'>> & { movingAverage: number | null };

/**
 * Fills defaults and validates every option, whatever the method, so a bad config fails
 * when the collector is created rather than when a range is first asked for.
 */
function resolveOptions(opts: CollectorOptions = {}): Resolved {
  const r: Resolved = {
    bins: opts.bins ?? 2048,
    percentile: opts.percentile ?? 99.999,
    quantLevels: opts.quantLevels ?? 128,
    levels: opts.levels ?? 256,
    movingAverage: opts.movingAverage ?? null,
  };
  new Histogram(r.bins); // validates bins
  checkPercentile(r.percentile);
  checkQuantLevels(r.quantLevels);
  checkMseLevels(r.levels);
  if (r.movingAverage !== null) new MovingAverageMinMaxObserver(r.movingAverage); // validates
  return r;
}

function checkMethod(method: unknown): RangeMethod {
  if (!RANGE_METHODS.includes(method as RangeMethod)) {
    throw new OptionError(`unknown range method ${JSON.stringify(method)}`, { value: method, hint: `use one of ${RANGE_METHODS.join(', ')}` });
  }
  return method as RangeMethod;
}

function mismatch(what: string, a: unknown, b: unknown): OptionError {
  return new OptionError(`cannot merge collectors: ${what} differ`, {
    value: { self: a, other: b },
    hint: 'merge only collectors created with the same method and options',
  });
}

interface CollectorJSON {
  kind: 'collector';
  version: 1;
  method: RangeMethod;
  options: Resolved;
  state: unknown;
}

class MinMaxCollector implements TensorCollector {
  readonly method = 'minmax' as const;
  constructor(
    readonly options: Resolved,
    readonly observer: MinMaxObserver | MovingAverageMinMaxObserver,
  ) {}

  get samples(): number {
    return this.observer.samples;
  }
  update(data: ArrayLike<number>): void {
    this.observer.update(data);
  }
  updateExtremes(lo: number, hi: number, count: number): void {
    this.observer.updateExtremes(lo, hi, count);
  }
  merge(other: TensorCollector): void {
    if (!(other instanceof MinMaxCollector)) throw mismatch('methods', this.method, other.method);
    const a = this.observer;
    const b = other.observer;
    if (a instanceof MovingAverageMinMaxObserver && b instanceof MovingAverageMinMaxObserver) a.merge(b);
    else if (a instanceof MinMaxObserver && b instanceof MinMaxObserver) a.merge(b);
    else throw mismatch('movingAverage options', this.options.movingAverage, other.options.movingAverage);
  }
  /**
   * Extremes carry no weights to fade: the plain observer never forgets, the moving average
   * forgets by itself. Kept so callers can decay any collector uniformly.
   */
  decay(factor: number): void {
    if (!(factor > 0 && factor <= 1)) throw new OptionError('decay factor must be in (0, 1]', { value: factor });
  }
  range(): Range {
    return this.observer.range();
  }
  toJSON(): CollectorJSON {
    return { kind: 'collector', version: 1, method: this.method, options: { ...this.options }, state: this.observer.toJSON() };
  }
}

class HistogramCollector implements TensorCollector {
  constructor(
    readonly method: Exclude<RangeMethod, 'minmax'>,
    readonly options: Resolved,
    readonly histogram: Histogram,
  ) {}

  get samples(): number {
    return this.histogram.seen;
  }
  update(data: ArrayLike<number>): void {
    this.histogram.update(data);
  }
  updateSubset(data: Float32Array, lo: number, hi: number): void {
    this.histogram.updateSubset(data, lo, hi);
  }
  /** Histograms merge exactly; estimator options of `this` apply to the merged data. */
  merge(other: TensorCollector): void {
    if (!(other instanceof HistogramCollector) || other.method !== this.method) throw mismatch('methods', this.method, other.method);
    this.histogram.merge(other.histogram);
  }
  decay(factor: number): void {
    this.histogram.decay(factor);
  }
  range(): Range {
    switch (this.method) {
      case 'percentile':
        return percentileRange(this.histogram, this.options.percentile);
      case 'entropy':
        return entropyRange(this.histogram, { quantLevels: this.options.quantLevels });
      case 'mse':
        return mseRange(this.histogram, { levels: this.options.levels });
    }
  }
  toJSON(): CollectorJSON {
    return { kind: 'collector', version: 1, method: this.method, options: { ...this.options }, state: this.histogram.toJSON() };
  }
}

function build(method: RangeMethod, r: Resolved): TensorCollector {
  if (method === 'minmax') {
    return new MinMaxCollector(r, r.movingAverage === null ? new MinMaxObserver() : new MovingAverageMinMaxObserver(r.movingAverage));
  }
  return new HistogramCollector(method, r, new Histogram(r.bins));
}

export function createCollector(method: RangeMethod, opts?: CollectorOptions): TensorCollector {
  return build(checkMethod(method), resolveOptions(opts));
}

export function collectorFromJSON(json: unknown): TensorCollector {
  if (typeof json !== 'object' || json === null || (json as CollectorJSON).kind !== 'collector' || (json as CollectorJSON).version !== 1) {
    throw new DataError('invalid collector JSON', { value: json, hint: 'pass the output of a collector toJSON()' });
  }
  const j = json as CollectorJSON;
  const method = checkMethod(j.method);
  const r = resolveOptions(j.options ?? {});
  if (method === 'minmax') {
    const observer = r.movingAverage === null ? MinMaxObserver.fromJSON(j.state) : MovingAverageMinMaxObserver.fromJSON(j.state);
    return new MinMaxCollector(r, observer);
  }
  const h = Histogram.fromJSON(j.state);
  if (h.bins !== r.bins) throw new DataError('invalid collector JSON: histogram bins differ from options', { value: { bins: r.bins, histogram: h.bins } });
  return new HistogramCollector(method, r, h);
}

interface CollectorSetJSON {
  kind: 'collector-set';
  version: 1;
  method: RangeMethod;
  options: Resolved;
  /** An array, not an object: tensor names are arbitrary strings (even "__proto__"). */
  tensors: Array<{ name: string; collector: unknown }>;
}

/** One collector per tensor name, all with the same method and options. */
export class CollectorSet {
  readonly method: RangeMethod;
  private readonly opts: Resolved;
  private readonly byName = new Map<string, TensorCollector>();

  constructor(method: RangeMethod, opts?: CollectorOptions) {
    this.method = checkMethod(method);
    this.opts = resolveOptions(opts);
  }

  get options(): Readonly<Resolved> {
    return this.opts;
  }
  get size(): number {
    return this.byName.size;
  }
  names(): string[] {
    return [...this.byName.keys()];
  }
  get(name: string): TensorCollector | undefined {
    return this.byName.get(name);
  }

  private collector(name: string): TensorCollector {
    let c = this.byName.get(name);
    if (c === undefined) {
      c = build(this.method, this.opts);
      this.byName.set(name, c);
    }
    return c;
  }

  update(name: string, data: ArrayLike<number>): void {
    this.collector(name).update(data);
  }

  /**
   * 'minmax' only: feeds a batch's extremes and finite-value count computed elsewhere (e.g.
   * inside ORT), with the same effect as update() on the batch itself.
   */
  updateExtremes(name: string, lo: number, hi: number, count: number): void {
    const c = this.collector(name);
    if (!(c instanceof MinMaxCollector)) {
      throw new OptionError(`updateExtremes needs the minmax method, not '${this.method}'`, {
        value: this.method,
        hint: 'histogram methods need the values themselves: use update()',
      });
    }
    c.updateExtremes(lo, hi, count);
  }

  /**
   * Histogram methods only: counts `data`, a subset of the tensor's values (a thinned tap),
   * whose whole-tensor extremes are [lo, hi] (see Histogram.updateSubset).
   */
  updateSubset(name: string, data: Float32Array, lo: number, hi: number): void {
    const c = this.collector(name);
    if (!(c instanceof HistogramCollector)) {
      throw new OptionError(`updateSubset needs a histogram method, not '${this.method}'`, {
        value: this.method,
        hint: 'minmax needs only extremes: use updateExtremes()',
      });
    }
    c.updateSubset(data, lo, hi);
  }

  ranges(): Map<string, Range> {
    const out = new Map<string, Range>();
    for (const [name, c] of this.byName) out.set(name, c.range());
    return out;
  }

  /** Adds the other set's statistics tensor by tensor (tensors new to this set are copied). */
  merge(other: CollectorSet): void {
    if (other.method !== this.method) throw mismatch('methods', this.method, other.method);
    for (const [name, c] of other.byName) this.collector(name).merge(c);
  }

  decay(factor: number): void {
    for (const c of this.byName.values()) c.decay(factor);
  }

  toJSON(): CollectorSetJSON {
    return {
      kind: 'collector-set',
      version: 1,
      method: this.method,
      options: { ...this.opts },
      tensors: [...this.byName].map(([name, c]) => ({ name, collector: c.toJSON() })),
    };
  }

  static fromJSON(json: unknown): CollectorSet {
    const j = json as Partial<CollectorSetJSON> | null;
    if (typeof j !== 'object' || j === null || j.kind !== 'collector-set' || j.version !== 1 || !Array.isArray(j.tensors)) {
      throw new DataError('invalid collector-set JSON', { value: json, hint: 'pass the output of CollectorSet.toJSON()' });
    }
    const set = new CollectorSet(j.method as RangeMethod, j.options);
    for (const t of j.tensors) {
      if (typeof t?.name !== 'string' || set.byName.has(t.name)) throw new DataError('invalid collector-set JSON: bad or duplicate tensor name', { value: t?.name });
      const c = collectorFromJSON(t.collector);
      if (c.method !== set.method) throw new DataError('invalid collector-set JSON: tensor method differs from the set', { value: t.name });
      set.byName.set(t.name, c);
    }
    return set;
  }
}

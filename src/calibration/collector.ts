// Per-tensor statistic collectors used by the calibration pipeline: one object per tensor
// that is fed batches of values, merged across workers or devices, faded under drift,
// serialised as plain data, and finally asked for a range. What a collector keeps is its
// method's observer (methods.ts): extremes for minmax, a fixed-size Histogram for the
// others, so memory is O(bins) per tensor whatever the number of samples.

import { DataError, OptionError } from '../common/index.js';
import { checkMseLevels, checkPercentile, checkQuantLevels, type Range } from './estimators.js';
import { Histogram } from './histogram.js';
import { MinMaxObserver } from './minmax.js';
import { checkMethod, observerOf, RANGE_METHODS, type RangeMethod, type ResolvedMethodOptions } from './methods.js';
import { HistogramObserver, type RangeObserver } from './observer.js';

export interface CollectorOptions {
  /** Histogram bins (percentile, entropy, mse); default 2048. */
  bins?: number;
  /** Percentile for 'percentile'; default 99.999. */
  percentile?: number;
  /** One-sided levels for 'entropy'; default 128. */
  quantLevels?: number;
  /** Grid points for 'mse'; default 256. */
  levels?: number;
  /** 'mse' scores clipping on a symmetric grid with zero-point 0 (target tensorrt); default false. */
  symmetricGrid?: boolean;
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

type Resolved = ResolvedMethodOptions;

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
    // Recorded only when set, so collectors saved before it existed read back alike.
    ...(opts.symmetricGrid ? { symmetricGrid: true } : {}),
  };
  new Histogram(r.bins); // validates bins
  checkPercentile(r.percentile);
  checkQuantLevels(r.quantLevels);
  checkMseLevels(r.levels);
  return r;
}

const checkRangeMethod = (method: unknown): RangeMethod => checkMethod(method, RANGE_METHODS, 'range method');

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

/** A tensor's collector: its method's observer, and the options it was made with. */
class Collector implements TensorCollector {
  constructor(
    readonly method: RangeMethod,
    readonly options: Resolved,
    readonly observer: RangeObserver,
  ) {}

  get samples(): number {
    return this.observer.samples;
  }
  update(data: ArrayLike<number>): void {
    this.observer.update(data);
  }
  merge(other: TensorCollector): void {
    if (!(other instanceof Collector) || other.method !== this.method) throw mismatch('methods', this.method, other.method);
    this.observer.merge(other.observer);
  }
  decay(factor: number): void {
    this.observer.decay(factor);
  }
  range(): Range {
    return this.observer.range();
  }
  toJSON(): CollectorJSON {
    return { kind: 'collector', version: 1, method: this.method, options: { ...this.options }, state: this.observer.toJSON() };
  }
}

function newObserver(method: RangeMethod, r: Resolved, histogram?: Histogram): RangeObserver {
  const o = observerOf(method);
  if (o.kind === 'extremes') return new MinMaxObserver();
  return new HistogramObserver(histogram ?? new Histogram(r.bins), (h) => o.estimate(h, r));
}

export function createCollector(method: RangeMethod, opts?: CollectorOptions): TensorCollector {
  const m = checkRangeMethod(method);
  const r = resolveOptions(opts);
  return new Collector(m, r, newObserver(m, r));
}

export function collectorFromJSON(json: unknown): TensorCollector {
  if (typeof json !== 'object' || json === null || (json as CollectorJSON).kind !== 'collector' || (json as CollectorJSON).version !== 1) {
    throw new DataError('invalid collector JSON', { value: json, hint: 'pass the output of a collector toJSON()' });
  }
  const j = json as CollectorJSON;
  const method = checkRangeMethod(j.method);
  const r = resolveOptions(j.options ?? {});
  if (observerOf(method).kind === 'extremes') return new Collector(method, r, MinMaxObserver.fromJSON(j.state));
  const h = Histogram.fromJSON(j.state);
  if (h.bins !== r.bins) throw new DataError('invalid collector JSON: histogram bins differ from options', { value: { bins: r.bins, histogram: h.bins } });
  return new Collector(method, r, newObserver(method, r, h));
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
    this.method = checkRangeMethod(method);
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

  private collector(name: string): Collector {
    let c = this.byName.get(name) as Collector | undefined;
    if (c === undefined) {
      c = new Collector(this.method, this.opts, newObserver(this.method, this.opts));
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
    const observer = this.collector(name).observer;
    if (!observer.updateExtremes) {
      throw new OptionError(`updateExtremes needs the minmax method, not '${this.method}'`, {
        value: this.method,
        hint: 'histogram methods need the values themselves: use update()',
      });
    }
    observer.updateExtremes(lo, hi, count);
  }

  /**
   * Histogram methods only: counts `data`, a subset of the tensor's values (a thinned tap),
   * whose whole-tensor extremes are [lo, hi] (see Histogram.updateSubset).
   */
  updateSubset(name: string, data: Float32Array, lo: number, hi: number): void {
    const observer = this.collector(name).observer;
    if (!observer.updateSubset) {
      throw new OptionError(`updateSubset needs a histogram method, not '${this.method}'`, {
        value: this.method,
        hint: 'minmax needs only extremes: use updateExtremes()',
      });
    }
    observer.updateSubset(data, lo, hi);
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

// Min/max observers: the cheapest range statistics. MinMaxObserver keeps the exact extremes
// of everything seen (mergeable across workers and devices); MovingAverageMinMaxObserver
// follows the per-batch extremes with an exponential moving average, so a stream's range can
// shrink again after a transient and single-batch spikes are damped.

import { DataError, OptionError } from '../common/index.js';
import type { Range } from './estimators.js';
import { finiteExtremes } from './extremes.js';

export interface MinMaxJSON {
  kind: 'minmax' | 'moving-average-minmax';
  version: 1;
  min: number | null;
  max: number | null;
  samples: number;
  averagingConstant?: number;
}

/** Finite extremes of one batch; count 0 when it holds no finite value. */
function batchExtremes(data: ArrayLike<number>): { lo: number; hi: number; count: number } {
  const { lo, hi, finite } = finiteExtremes(data);
  return { lo: lo + 0, hi: hi + 0, count: finite };
}

function parseCommon(json: unknown, kind: MinMaxJSON['kind']): MinMaxJSON {
  const bad = (what: string): never => {
    throw new DataError(`invalid ${kind} observer JSON: ${what}`, { value: json, hint: 'pass the output of toJSON()' });
  };
  if (typeof json !== 'object' || json === null) bad('not an object');
  const j = json as Partial<MinMaxJSON>;
  if (j.kind !== kind || j.version !== 1) bad('kind/version');
  if (!Number.isSafeInteger(j.samples) || (j.samples as number) < 0) bad('samples');
  if ((j.samples as number) === 0) {
    if (j.min !== null || j.max !== null) bad('min/max without samples');
  } else if (typeof j.min !== 'number' || typeof j.max !== 'number' || !Number.isFinite(j.min) || !Number.isFinite(j.max) || j.min > j.max) {
    bad('min/max');
  }
  return j as MinMaxJSON;
}

export class MinMaxObserver {
  protected _min = Infinity;
  protected _max = -Infinity;
  protected _samples = 0;

  /** Finite values seen. */
  get samples(): number {
    return this._samples;
  }

  update(data: ArrayLike<number>): void {
    const b = batchExtremes(data);
    this.updateExtremes(b.lo, b.hi, b.count);
  }

  /** Same as update() for a batch of `count` finite values whose extremes are already known. */
  updateExtremes(lo: number, hi: number, count: number): void {
    if (count === 0) return;
    if (lo < this._min) this._min = lo + 0;
    if (hi > this._max) this._max = hi + 0;
    this._samples += count;
  }

  merge(other: MinMaxObserver): void {
    if (other._samples === 0) return;
    this._min = Math.min(this._min, other._min);
    this._max = Math.max(this._max, other._max);
    this._samples += other._samples;
  }

  /** Observed extremes; {0, 0} before any finite value. */
  range(): Range {
    return this._samples === 0 ? { min: 0, max: 0 } : { min: this._min, max: this._max };
  }

  toJSON(): MinMaxJSON {
    const empty = this._samples === 0;
    return { kind: 'minmax', version: 1, min: empty ? null : this._min, max: empty ? null : this._max, samples: this._samples };
  }

  static fromJSON(json: unknown): MinMaxObserver {
    const j = parseCommon(json, 'minmax');
    const o = new MinMaxObserver();
    if (j.samples > 0) {
      o._min = j.min as number;
      o._max = j.max as number;
      o._samples = j.samples;
    }
    return o;
  }
}

/**
 * Exponential moving average of per-batch extremes: the first batch sets the range, each
 * later batch moves it by `averagingConstant` towards that batch's min and max. Batches with
 * no finite value are ignored (they say nothing about the range).
 */
export class MovingAverageMinMaxObserver {
  readonly averagingConstant: number;
  private _min = 0;
  private _max = 0;
  private _samples = 0;

  constructor(averagingConstant = 0.01) {
    if (!(averagingConstant > 0 && averagingConstant <= 1)) {
      throw new OptionError('moving-average constant must be in (0, 1]', {
        value: averagingConstant,
        hint: 'e.g. 0.01 moves the range 1% of the way to each new batch; 1 tracks the last batch',
      });
    }
    this.averagingConstant = averagingConstant;
  }

  get samples(): number {
    return this._samples;
  }

  update(data: ArrayLike<number>): void {
    const b = batchExtremes(data);
    this.updateExtremes(b.lo, b.hi, b.count);
  }

  /** Same as update() for a batch of `count` finite values whose extremes are already known. */
  updateExtremes(lo: number, hi: number, count: number): void {
    if (count === 0) return;
    if (this._samples === 0) {
      this._min = lo + 0;
      this._max = hi + 0;
    } else {
      const c = this.averagingConstant;
      this._min += c * (lo - this._min);
      this._max += c * (hi - this._max);
    }
    this._samples += count;
  }

  /**
   * A moving average is not mergeable exactly (it depends on the interleaving of batches),
   * so merging takes the sample-weighted mean of the two states: the natural estimate when
   * two devices watched the same stream for different lengths of time.
   */
  merge(other: MovingAverageMinMaxObserver): void {
    if (other._samples === 0) return;
    if (this._samples === 0) {
      this._min = other._min;
      this._max = other._max;
    } else {
      const n = this._samples + other._samples;
      const a = this._samples / n;
      const b = other._samples / n;
      this._min = a * this._min + b * other._min;
      this._max = a * this._max + b * other._max;
    }
    this._samples += other._samples;
  }

  range(): Range {
    return { min: this._min, max: this._max };
  }

  toJSON(): MinMaxJSON {
    const empty = this._samples === 0;
    return {
      kind: 'moving-average-minmax',
      version: 1,
      min: empty ? null : this._min,
      max: empty ? null : this._max,
      samples: this._samples,
      averagingConstant: this.averagingConstant,
    };
  }

  static fromJSON(json: unknown): MovingAverageMinMaxObserver {
    const j = parseCommon(json, 'moving-average-minmax');
    const o = new MovingAverageMinMaxObserver(j.averagingConstant ?? 0.01);
    if (j.samples > 0) {
      o._min = j.min as number;
      o._max = j.max as number;
      o._samples = j.samples;
    }
    return o;
  }
}

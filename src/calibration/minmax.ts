// The min/max observer: the cheapest range statistic. It keeps the exact extremes of
// everything seen, mergeable across workers and devices, and never forgets (decay only
// validates its factor).

import { DataError, OptionError } from '../common/index.js';
import type { Range } from './estimators.js';
import type { RangeObserver } from './observer.js';
import { finiteExtremes } from './extremes.js';

export interface MinMaxJSON {
  kind: 'minmax';
  version: 1;
  min: number | null;
  max: number | null;
  samples: number;
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

export class MinMaxObserver implements RangeObserver {
  private _min = Infinity;
  private _max = -Infinity;
  private _samples = 0;

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

  /**
   * Extremes carry no weights to fade: the observer never forgets. Kept so callers can decay
   * any collector uniformly.
   */
  decay(factor: number): void {
    if (!(factor > 0 && factor <= 1)) throw new OptionError('decay factor must be in (0, 1]', { value: factor });
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

// Streaming histogram of tensor values with O(bins) memory that merges EXACTLY.
//
// Bins have width 2**exp and are anchored at 0 (integer index k covers [k*w, (k+1)*w)).
// Coarsening by 2**d maps index k to floor(k / 2**d) with no loss, so a histogram grown
// batch by batch, or merged from histograms built on other workers or devices, ends up with
// the same exp, offset and counts as one built from all the data at once. That is what lets
// a fleet pool statistics instead of raw inputs.
//
// The layout is a pure function of the observed [min, max]:
//   exp    = the smallest integer e >= floor(log2(max|x|)) - 52 such that the indices of min
//            and max at width 2**e are at most `bins` slots apart;
//   offset = floor(min / 2**exp), the index held in counts[0].
// Both parts of the rule only grow as [min, max] grows, which is why incremental widening
// lands on the same layout as a single pass. The floor on exp keeps every index a safe
// integer (|x| / 2**exp < 2**53) and gives constant data a width near its ulp instead of an
// unbounded one. While every value seen is 0 no exp is chosen: 0 has index 0 at any width,
// so the zero count simply waits in slot 0.

import { DataError, OptionError } from '../common/index.js';
import { finiteExtremes } from './extremes.js';

const MIN_EXP = -1074; // 2**-1074 is the smallest positive double
const MAX_EXP = 1023;
const MANTISSA_BITS = 52;
const MAX_BINS = 1 << 20;

/** Plain-data form of a histogram: survives JSON, structured clone and MQTT payloads. */
export interface HistogramJSON {
  kind: 'histogram';
  version: 1;
  bins: number;
  /** null while only zeros have been seen (no width chosen yet). */
  exp: number | null;
  offset: number;
  /** Absolute bin index of counts[0]; counts cover only the used range. */
  start: number;
  counts: number[];
  min: number | null;
  max: number | null;
  total: number;
  seen: number;
  nonFinite: number;
  /** Older records also carry `zeros`, a statistic nothing read; it is ignored. */
}

function pow2(e: number): number {
  return 2 ** e; // exact for integer e in [-1074, 1023]; Infinity above, which callers rely on
}

/** floor(log2(a)) for finite a > 0, corrected so it is exact even where Math.log2 rounds. */
function floorLog2(a: number): number {
  let m = Math.floor(Math.log2(a));
  if (m < MIN_EXP) m = MIN_EXP;
  if (m > MAX_EXP) m = MAX_EXP;
  while (m > MIN_EXP && pow2(m) > a) m--;
  while (m < MAX_EXP && pow2(m + 1) <= a) m++;
  return m;
}

/**
 * floor(x / 2**e). A tiny negative quotient can underflow to -0, whose floor is -0 rather
 * than -1; the true floor of any negative number is <= -1, so clamp.
 */
function indexAt(x: number, e: number): number {
  const k = Math.floor(x / pow2(e));
  return x < 0 ? Math.min(k, -1) : k + 0; // + 0 turns -0 into 0
}

/** floor(k / 2**d) for an integer index k and d >= 0; same underflow care as indexAt. */
function coarsenIndex(k: number, d: number): number {
  if (d === 0) return k;
  const j = Math.floor(k / pow2(d));
  return k < 0 ? Math.min(j, -1) : j + 0;
}

/**
 * Float32 data times 2**-e cannot underflow to -0 for e up to this (the smallest float32
 * magnitude is 2**-149, and doubles reach 2**-1074), so floor() alone gives each index.
 */
const FLOAT32_SAFE_EXP = 900;
/**
 * Independent count arrays the float32 loop rotates over. Activations pile into a few bins
 * (Relu's zeros above all), and back-to-back increments of one slot wait on each other;
 * four lanes let them overlap. Below LANE_MIN_VALUES per lane merging them costs more.
 */
const COUNT_LANES = 4;
const LANE_MIN_VALUES = 16;

/**
 * Adds all-finite float32 `data` to `counts` (slot = floor(x * inv) - offset, inside the
 * layout by construction). Large inputs go through `lanes` first (see COUNT_LANES).
 */
function countFloat32(data: Float32Array, inv: number, offset: number, counts: Float64Array, lanes: Int32Array): void {
  const n = data.length;
  const bins = counts.length;
  if (n < LANE_MIN_VALUES * bins) {
    for (let i = 0; i < n; i++) counts[(Math.floor(data[i] * inv) - offset) | 0] += 1;
    return;
  }
  // Int32 lanes: one call adds at most n < 2**31 to a slot.
  const b1 = bins, b2 = 2 * bins, b3 = 3 * bins;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    lanes[(Math.floor(data[i] * inv) - offset) | 0]++;
    lanes[((Math.floor(data[i + 1] * inv) - offset) | 0) + b1]++;
    lanes[((Math.floor(data[i + 2] * inv) - offset) | 0) + b2]++;
    lanes[((Math.floor(data[i + 3] * inv) - offset) | 0) + b3]++;
  }
  for (; i < n; i++) lanes[(Math.floor(data[i] * inv) - offset) | 0]++;
  for (let k = 0; k < bins; k++) {
    counts[k] += lanes[k] + lanes[k + b1] + lanes[k + b2] + lanes[k + b3];
    lanes[k] = lanes[k + b1] = lanes[k + b2] = lanes[k + b3] = 0;
  }
}

export class Histogram {
  readonly bins: number;
  private _counts: Float64Array;
  private _exp = 0;
  /** false while every finite value seen is 0: any width fits, so none is committed to. */
  private _fixed = false;
  private _offset = 0;
  private _min = Infinity;
  private _max = -Infinity;
  private _total = 0;
  private _seen = 0;
  private _nonFinite = 0;

  constructor(bins = 2048) {
    if (!Number.isInteger(bins) || bins < 16 || bins > MAX_BINS) {
      throw new OptionError(`histogram bins must be an integer in [16, ${MAX_BINS}]`, {
        value: bins,
        hint: 'use the default 2048 unless memory is very tight',
      });
    }
    this.bins = bins;
    this._counts = new Float64Array(bins);
  }

  /** True until a finite value has been seen. */
  get empty(): boolean {
    return this._seen === 0;
  }
  /** Exact smallest finite value seen (0 when empty). Decay does not forget it. */
  get min(): number {
    return this.empty ? 0 : this._min;
  }
  /** Exact largest finite value seen (0 when empty). Decay does not forget it. */
  get max(): number {
    return this.empty ? 0 : this._max;
  }
  /** Sum of the counts: the number of finite values seen, scaled by every decay since. */
  get total(): number {
    return this._total;
  }
  /** Finite values seen, never decayed (the sample count reported in a calibration profile). */
  get seen(): number {
    return this._seen;
  }
  /** NaN and ±Infinity values skipped. */
  get nonFinite(): number {
    return this._nonFinite;
  }
  /** log2 of the bin width; 0 while only zeros have been seen. */
  get exp(): number {
    return this._exp;
  }
  get width(): number {
    return pow2(this._exp);
  }
  /** Absolute bin index stored in counts[0]. */
  get offset(): number {
    return this._offset;
  }
  /** The live dense counts (slot i is bin index offset + i). Do not modify. */
  get counts(): Float64Array {
    return this._counts;
  }

  /** Lower edge of slot i. */
  lowEdge(i: number): number {
    return (this._offset + i) * this.width;
  }

  /** First and last slot with a nonzero count, or null when there are none. */
  usedRange(): { first: number; last: number } | null {
    const c = this._counts;
    let first = 0;
    while (first < c.length && c[first] === 0) first++;
    if (first === c.length) return null;
    let last = c.length - 1;
    while (c[last] === 0) last--;
    return { first, last };
  }

  update(data: ArrayLike<number>): void {
    const { lo, hi, finite } = finiteExtremes(data);
    this.add(data, lo, hi, finite);
  }

  /**
   * Counts `data`, a subset of a tensor whose exact extremes are `lo` and `hi` (a thinned
   * tap, calibration/thinning.ts). The layout follows the whole tensor's range, so min, max
   * and the bins are what update() on the whole tensor would give; the counts are the
   * subset's. Extremes that are not finite, or a subset that is not, say nothing about the
   * rest: the subset is then counted like any data.
   */
  updateSubset(data: Float32Array, lo: number, hi: number): void {
    const own = finiteExtremes(data);
    const whole = Number.isFinite(lo) && Number.isFinite(hi) && own.finite === data.length;
    this.add(data, whole ? Math.min(lo, own.lo) : own.lo, whole ? Math.max(hi, own.hi) : own.hi, own.finite);
  }

  /** Counts the `finite` finite values of `data`, whose layout must cover [lo, hi]. */
  private add(data: ArrayLike<number>, lo: number, hi: number, finite: number): void {
    const n = data.length;
    this._nonFinite += n - finite;
    if (finite === 0) return;

    this.fitLayout(Math.min(lo, this._min), Math.max(hi, this._max), this._fixed ? this._exp : -Infinity);

    if (!this._fixed) {
      this._counts[0] += finite; // only zeros so far
    } else if (data instanceof Float32Array && finite === n && this._exp <= FLOAT32_SAFE_EXP) {
      countFloat32(data, pow2(-this._exp), this._offset, this._counts, this.countScratch());
    } else {
      this.countChecked(data);
    }
    this._total += finite;
    this._seen += finite;
  }

  /** Per-lane counts for countFloat32, kept between calls to spare an allocation a batch. */
  private scratch: Int32Array | null = null;
  private countScratch(): Int32Array {
    return (this.scratch ??= new Int32Array(COUNT_LANES * this.bins));
  }

  /** Counts any finite values of `data`, skipping the rest; exact for every exp. */
  private countChecked(data: ArrayLike<number>): void {
    const c = this._counts;
    const off = this._offset;
    const e = this._exp;
    // Multiplying by 2**-e is the same correctly rounded operation as dividing by 2**e;
    // 2**-e overflows below e = -1023, where indexAt divides instead.
    const inv = e >= -MAX_EXP ? pow2(-e) : 0;
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      if (x - x !== 0) continue;
      let k: number;
      if (inv !== 0) {
        k = Math.floor(x * inv);
        if (x < 0 && k > -1) k = -1;
      } else {
        k = indexAt(x, e);
      }
      c[k - off] += 1;
    }
  }

  /** Adds another histogram's counts. Exact: equals the histogram of both data sets. */
  merge(other: Histogram): void {
    if (other.bins !== this.bins) {
      throw new OptionError('cannot merge histograms with different bin counts', {
        value: { bins: this.bins, other: other.bins },
        hint: 'build every histogram of one calibration with the same bins option',
      });
    }
    this._nonFinite += other._nonFinite;
    if (other.empty) return;
    const from = Math.max(this._fixed ? this._exp : -Infinity, other._fixed ? other._exp : -Infinity);
    this.fitLayout(Math.min(this._min, other._min), Math.max(this._max, other._max), from);

    const oc = other._counts;
    const c = this._counts;
    const d = this._exp - other._exp;
    for (let j = 0; j < oc.length; j++) {
      const v = oc[j];
      if (v === 0) continue;
      const k = other._fixed ? coarsenIndex(other._offset + j, d) : 0;
      c[k - this._offset] += v;
    }
    this._total += other._total;
    this._seen += other._seen;
  }

  /**
   * Forgets old data geometrically (factor in (0, 1]). Only the counts fade: min and max stay
   * the exact observed extremes, because the bin layout is derived from them and must not
   * move under existing counts; estimators read the faded counts, so old outliers stop
   * mattering even though max still reports them.
   */
  decay(factor: number): void {
    if (!(factor > 0 && factor <= 1)) {
      throw new OptionError('decay factor must be in (0, 1]', { value: factor, hint: 'e.g. 0.5 halves the weight of all data seen so far' });
    }
    if (factor === 1) return;
    const c = this._counts;
    for (let i = 0; i < c.length; i++) c[i] *= factor;
    this._total *= factor;
  }

  /**
   * Value below which a fraction q of the (weighted) data lies, interpolating linearly inside
   * the bin that holds it, clamped to the observed [min, max]. 0 for an empty histogram.
   */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) {
      throw new OptionError('quantile must be in [0, 1]', { value: q, hint: 'pass a fraction, e.g. 0.999 for the 99.9th percentile' });
    }
    if (this.empty) return 0;
    const used = this.usedRange();
    if (used === null || !(this._total > 0)) return this._min; // decayed to nothing
    const target = q * this._total;
    const c = this._counts;
    const w = this.width;
    let cum = 0;
    for (let i = used.first; i <= used.last; i++) {
      const v = c[i];
      if (v === 0) continue;
      if (cum + v >= target) {
        const frac = Math.min(1, Math.max(0, (target - cum) / v));
        const x = (this._offset + i + frac) * w;
        return Math.min(this._max, Math.max(this._min, x));
      }
      cum += v;
    }
    return this._max; // q * total rounded above the summed counts
  }

  clone(): Histogram {
    const h = new Histogram(this.bins);
    h._counts.set(this._counts);
    h._exp = this._exp;
    h._fixed = this._fixed;
    h._offset = this._offset;
    h._min = this._min;
    h._max = this._max;
    h._total = this._total;
    h._seen = this._seen;
    h._nonFinite = this._nonFinite;
    return h;
  }

  toJSON(): HistogramJSON {
    const used = this.usedRange();
    return {
      kind: 'histogram',
      version: 1,
      bins: this.bins,
      exp: this._fixed ? this._exp : null,
      offset: this._offset,
      start: this._offset + (used ? used.first : 0),
      counts: used ? Array.from(this._counts.subarray(used.first, used.last + 1)) : [],
      min: this.empty ? null : this._min,
      max: this.empty ? null : this._max,
      total: this._total,
      seen: this._seen,
      nonFinite: this._nonFinite,
    };
  }

  static fromJSON(json: unknown): Histogram {
    const bad = (what: string): never => {
      throw new DataError(`invalid histogram JSON: ${what}`, { value: json, hint: 'pass the output of Histogram.toJSON()' });
    };
    if (typeof json !== 'object' || json === null) bad('not an object');
    const j = json as Partial<HistogramJSON>;
    if (j.kind !== 'histogram' || j.version !== 1) bad('kind/version');
    const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    if (!Number.isInteger(j.bins)) bad('bins');
    const h = new Histogram(j.bins as number);
    if (!Array.isArray(j.counts) || !j.counts.every((v) => isNum(v) && v >= 0)) bad('counts');
    if (!Number.isSafeInteger(j.offset) || !Number.isSafeInteger(j.start)) bad('offset/start');
    if (!isNum(j.total) || !isNum(j.seen) || !isNum(j.nonFinite)) bad('total/seen/nonFinite');
    const counts = j.counts as number[];
    const rel = (j.start as number) - (j.offset as number);
    if (rel < 0 || rel + counts.length > h.bins) bad('counts outside the window');
    if ((j.seen as number) === 0) {
      if (counts.some((v) => v !== 0)) bad('counts without samples');
      h._nonFinite = j.nonFinite as number;
      return h;
    }
    if (!isNum(j.min) || !isNum(j.max) || j.min > j.max) bad('min/max');
    if (j.exp === null) {
      if (j.min !== 0 || j.max !== 0 || j.offset !== 0) bad('exp is null but values are nonzero');
      h._fixed = false;
      h._exp = 0;
    } else {
      if (!Number.isInteger(j.exp) || (j.exp as number) < MIN_EXP || (j.exp as number) > MAX_EXP) bad('exp');
      h._fixed = true;
      h._exp = j.exp as number;
      if (indexAt(j.min as number, h._exp) !== j.offset || indexAt(j.max as number, h._exp) - (j.offset as number) >= h.bins) {
        bad('layout does not match min/max');
      }
    }
    h._offset = j.offset as number;
    h._counts.set(counts, rel);
    h._min = (j.min as number) + 0;
    h._max = (j.max as number) + 0;
    h._total = j.total as number;
    h._seen = j.seen as number;
    h._nonFinite = j.nonFinite as number;
    return h;
  }

  /**
   * Re-lays the histogram out for the observed range [lo, hi], widening (never narrowing) the
   * bins and moving counts so that counts[0] is again the bin of lo. `from` is a lower bound
   * on the new exp: the largest exp already committed to by the data being combined.
   */
  private fitLayout(lo: number, hi: number, from: number): void {
    lo += 0; // -0 -> 0, so layouts compare equal with Object.is
    hi += 0;
    this._min = lo;
    this._max = hi;
    if (lo === 0 && hi === 0) return; // still zeros only: keep no width

    const a = Math.max(-lo, hi);
    let e = Math.max(from, floorLog2(a) - MANTISSA_BITS, MIN_EXP);
    // Indices of lo and hi at width w differ by more than (hi - lo)/w - 1, so no width below
    // (hi - lo)/bins can fit: skip those without testing them (the -1 absorbs rounding).
    const perBin = (hi - lo) / this.bins;
    if (perBin > 0 && Number.isFinite(perBin)) e = Math.max(e, floorLog2(perBin) - 1);
    while (e < MAX_EXP && indexAt(hi, e) - indexAt(lo, e) >= this.bins) e++;
    const offset = indexAt(lo, e);
    if (this._fixed && e === this._exp && offset === this._offset) return;

    if (this._fixed && e === this._exp) {
      // Same width, lower min: slide the counts up in place. Streams whose min creeps down
      // batch by batch hit this path often, so it avoids an allocation per batch.
      const shift = this._offset - offset;
      this._counts.copyWithin(shift, 0, this.bins - shift);
      this._counts.fill(0, 0, shift);
      this._offset = offset;
      return;
    }
    const old = this._counts;
    const next = new Float64Array(this.bins);
    if (!this._fixed) {
      next[0 - offset] = old[0]; // the zeros seen so far: index 0 at any width
    } else {
      const d = e - this._exp;
      for (let i = 0; i < old.length; i++) {
        const v = old[i];
        if (v !== 0) next[coarsenIndex(this._offset + i, d) - offset] += v;
      }
    }
    this._counts = next;
    this._exp = e;
    this._offset = offset;
    this._fixed = true;
  }
}

// Range estimators: turn a Histogram into the [min, max] a tensor will be quantized over.
// Each returns the observed range clipped to a chosen threshold; extending it to contain 0
// and picking scale/zero-point is the quantizer's job. None of them returns NaN: an empty
// histogram gives {0, 0}.
//
// Definitions (the tests re-implement them by brute force, so keep the two in step):
//
// Entropy (TensorRT's KL calibration, on |x|, as NVIDIA's reference implements it). Fold
// the histogram into magnitude slots (slot k holds bins k and -k-1, which cover the same
// |x| interval because bins are anchored at 0); let n be the last nonzero slot + 1. The
// zero spike is suppressed first: m_0 = m_1 (a Relu output is mostly exact zeros, which
// quantize exactly under any threshold and would otherwise dominate both distributions).
// One-sided tensors (post-Relu) search with the same L = quantLevels: the reference's
// unsigned mode (2L levels) was tried and lost 1.25 points of MNIST accuracy, because its
// first cuts (per-group width 1, Q = P) score near zero and clip the input pixels at a
// quarter of their range. For each cut i in [L, n]:
//   P_k = m_k for k < i, plus every count at or beyond slot i added to P_{i-1};
//   the slice m_0..m_{i-1} is split into L groups of floor(i / L) slots, the last group
//   also taking the remainder; each group's total is spread evenly over the slots of the
//   group where m_k > 0, giving Q_k (Q_k = 0 where m_k = 0: empty bins stay empty);
//   KL = sum over k with P_k > 0 of p_k * ln(p_k / q_k), p = P / sum(P), q = Q / sum(Q);
//   infinite where some q_k = 0 under a p_k > 0 (the clipped outliers piled into an empty
//   last slot), so such cuts lose.
// The least KL wins, ties going to the larger cut; threshold T = i * width.
// One departure from the reference: cuts start at f + L rather than L, where f is the first
// nonzero slot. For a tensor far from 0 (say |x| in [0.8, 1.8]) the reference's cut at the
// first nonzero slot piles everything into one bin, where P = Q and KL = 0: it would clamp
// the whole tensor to a constant. For data that starts at 0 (f = 0) nothing changes.
//
// MSE. Candidates T = (t + 1) * width for every magnitude slot t < n. For a candidate, the
// quantized range is R = [a, b] with a = min(0, max(min, -T)), b = max(0, min(max, T)) and
// step s = (b - a) / (levels - 1). Every bin's count sits at its centre clamped to the
// observed [min, max], c; its error per value is (a - c)^2 below R, (c - b)^2 above R and the
// uniform rounding error s^2 / 12 inside R. The smallest T with the least total error wins.
// With a symmetric grid (zero-point 0, as TensorRT quantizes) the steps are spread over
// [-max(|a|, b), max(|a|, b)] whatever the tensor's sign: s = max(|a|, b) / (levels/2 - 1),
// so a one-sided tensor pays for the half of the grid it never uses.
// s^2/12 rather than the centre's own rounding error, because a bin's values are spread
// over the grid, and the centre's rounding error would make the objective jump erratically
// between neighbouring candidates.
//
// Histograms whose window does not contain 0 (data far from 0) are first coarsened exactly
// until it does, so the magnitude slots never exceed the bin count.

import { OptionError } from '../common/index.js';
import type { Range } from '../quant/params.js';
import type { Histogram } from './histogram.js';

export type { Range };

export interface EntropyOptions {
  /** Quantization levels on one side of 0 (128 for int8). */
  quantLevels?: number;
}

export interface MseOptions {
  /** Grid points across the range (256 for 8 bits). */
  levels?: number;
  /** The quantizer's grid is symmetric around 0 with zero-point 0 (TensorRT), not fitted to [a, b]. */
  symmetric?: boolean;
}

function checkLevels(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 2 || v > 1 << 20) {
    throw new OptionError(`${name} must be an integer in [2, ${1 << 20}]`, { value: v, hint: `e.g. ${name === 'quantLevels' ? 128 : 256} for 8 bits` });
  }
}

export function checkPercentile(p: number): void {
  if (!(p > 50 && p <= 100)) {
    throw new OptionError('percentile must be in (50, 100]', { value: p, hint: 'e.g. 99.99 clips the top and bottom 0.01% of values' });
  }
}

export function checkQuantLevels(v: number): void {
  checkLevels('quantLevels', v);
}

export function checkMseLevels(v: number): void {
  checkLevels('levels', v);
}

function observed(h: Histogram): Range {
  return { min: h.min, max: h.max };
}

function clipTo(h: Histogram, t: number): Range {
  return { min: Math.max(h.min, -t), max: Math.min(h.max, t) };
}

/** Dense counts over bin indices [offset, offset + counts.length), window containing 0. */
interface Grid {
  width: number;
  offset: number;
  counts: Float64Array;
}

/** The used part of the histogram, coarsened (exactly) until its window contains index 0. */
function zeroAnchoredGrid(h: Histogram, first: number, last: number): Grid {
  const kFirst = h.offset + first;
  const kLast = h.offset + last;
  let d = 0;
  const lo = () => Math.min(Math.floor(kFirst / 2 ** d), 0);
  const hi = () => Math.max(Math.floor(kLast / 2 ** d), 0);
  while (hi() - lo() >= h.bins) d++;
  const offset = lo();
  const counts = new Float64Array(hi() - offset + 1);
  const src = h.counts;
  const div = 2 ** d;
  for (let i = first; i <= last; i++) {
    if (src[i] !== 0) counts[Math.floor((h.offset + i) / div) - offset] += src[i];
  }
  return { width: h.width * div, offset, counts };
}

/** Magnitude slots (slot k = bins k and -k-1), trimmed after the last nonzero slot. */
function magnitudes(g: Grid): Float64Array {
  const { offset, counts } = g;
  const n = Math.max(offset + counts.length, -offset);
  const m = new Float64Array(n);
  for (let i = 0; i < counts.length; i++) {
    const k = offset + i;
    m[k >= 0 ? k : -k - 1] += counts[i];
  }
  let used = n;
  while (used > 0 && m[used - 1] === 0) used--;
  return m.subarray(0, used);
}

/** Observed [min, max]; {0, 0} when empty. */
export function minMaxRange(hist: Histogram): Range {
  return observed(hist);
}

/** Two-sided percentile clip: [quantile((100-p)/100), quantile(p/100)]. */
export function percentileRange(hist: Histogram, percentile = 99.999): Range {
  checkPercentile(percentile);
  if (hist.empty) return { min: 0, max: 0 };
  return { min: hist.quantile((100 - percentile) / 100), max: hist.quantile(percentile / 100) };
}

/** TensorRT-style KL-divergence threshold on |x|; see the header for the exact objective. */
export function entropyRange(hist: Histogram, { quantLevels = 128 }: EntropyOptions = {}): Range {
  checkQuantLevels(quantLevels);
  if (hist.empty) return { min: 0, max: 0 };
  const used = hist.usedRange();
  if (used === null) return observed(hist);
  const g = zeroAnchoredGrid(hist, used.first, used.last);
  const m = Float64Array.from(magnitudes(g));
  if (m.length > 1) m[0] = m[1];
  if (m.length < quantLevels) return observed(hist);
  return clipTo(hist, bestKlCut(m, quantLevels) * g.width);
}

/** The cut i (in slots) minimising KL(P || Q); the largest one on ties. */
function bestKlCut(m: Float64Array, L: number): number {
  const n = m.length;
  // Prefix sums give each group's total and count of nonzero slots in O(1). Counts are
  // integers unless decayed, so the sums are exact in the usual case.
  const sum = new Float64Array(n + 1);
  const nz = new Int32Array(n + 1);
  for (let k = 0; k < n; k++) {
    sum[k + 1] = sum[k] + m[k];
    nz[k + 1] = nz[k] + (m[k] !== 0 ? 1 : 0);
  }
  const Q = new Float64Array(n);
  let first = 0;
  while (first < n && m[first] === 0) first++;
  let bestI = n;
  let bestKl = Infinity;
  for (let i = Math.min(n, first + L); i <= n; i++) {
    const outliers = sum[n] - sum[i];
    const sumP = sum[n]; // P holds every count: the slice plus the outliers in slot i-1
    const per = Math.floor(i / L);
    let sumQ = 0;
    for (let j = 0; j < L; j++) {
      const s = j * per;
      const e = j === L - 1 ? i : s + per;
      const nonzero = nz[e] - nz[s];
      const each = nonzero > 0 ? (sum[e] - sum[s]) / nonzero : 0;
      for (let k = s; k < e; k++) {
        Q[k] = m[k] !== 0 ? each : 0;
        sumQ += Q[k];
      }
    }
    let kl = 0;
    for (let k = 0; k < i && kl !== Infinity; k++) {
      const Pk = k === i - 1 ? m[k] + outliers : m[k];
      if (Pk === 0) continue;
      if (Q[k] === 0 || sumQ === 0) {
        kl = Infinity;
        break;
      }
      const p = Pk / sumP;
      kl += p * Math.log(p / (Q[k] / sumQ));
    }
    if (kl <= bestKl) {
      bestKl = kl;
      bestI = i;
    }
  }
  return bestI;
}

/** Clipping threshold minimising expected squared quantization error; see the header. */
export function mseRange(hist: Histogram, { levels = 256, symmetric = false }: MseOptions = {}): Range {
  checkMseLevels(levels);
  if (hist.empty) return { min: 0, max: 0 };
  const used = hist.usedRange();
  if (used === null || hist.min === hist.max) return observed(hist);
  const g = zeroAnchoredGrid(hist, used.first, used.last);
  const n = magnitudes(g).length;
  const { counts, offset, width } = g;
  const len = counts.length;
  const lo = hist.min;
  const hi = hist.max;
  const centre = new Float64Array(len);
  let total = 0;
  for (let j = 0; j < len; j++) {
    centre[j] = Math.min(hi, Math.max(lo, (offset + j + 0.5) * width));
    total += counts[j];
  }

  let bestT = n;
  let bestErr = Infinity;
  for (let t = 0; t < n; t++) {
    const T = (t + 1) * width;
    const a = Math.min(0, Math.max(lo, -T));
    const b = Math.max(0, Math.min(hi, T));
    const s = symmetric ? Math.max(-a, b) / (levels / 2 - 1) : (b - a) / (levels - 1);
    // Centres are sorted, so the clipped bins are a prefix and a suffix; the rest all cost
    // s^2/12 per value.
    let err = 0;
    let clipped = 0;
    for (let j = 0; j < len && centre[j] < a; j++) {
      const c = counts[j];
      err += c * (a - centre[j]) ** 2;
      clipped += c;
    }
    for (let j = len - 1; j >= 0 && centre[j] > b; j--) {
      const c = counts[j];
      err += c * (centre[j] - b) ** 2;
      clipped += c;
    }
    err += (total - clipped) * ((s * s) / 12);
    if (err < bestErr) {
      bestErr = err;
      bestT = t + 1;
    }
  }
  return clipTo(hist, bestT * width);
}

import { describe, expect, it } from 'vitest';
import { Histogram, entropyRange, minMaxRange, mseRange, percentileRange, type Range } from '../../src/calibration/index.js';
import { OptionError } from '../../src/common/index.js';
import { DISTRIBUTIONS, gaussian, laplace, uniform } from './data.js';

function build(data: ArrayLike<number>, bins = 2048): Histogram {
  const h = new Histogram(bins);
  h.update(data);
  return h;
}

// ---- brute-force references: straightforward loops over every candidate, written
// ---- independently of src/calibration/estimators.ts from the documented definitions.

/** Magnitude histogram of a histogram whose window contains 0: slot k gets bins k and -k-1. */
function bruteMagnitudes(h: Histogram): number[] {
  expect(h.offset).toBeLessThanOrEqual(0);
  expect(h.offset + h.bins).toBeGreaterThan(0);
  const mag: number[] = [];
  for (let i = 0; i < h.bins; i++) {
    const bin = h.offset + i;
    const slot = bin >= 0 ? bin : -bin - 1;
    while (mag.length <= slot) mag.push(0);
    mag[slot] += h.counts[i];
  }
  while (mag.length > 0 && mag[mag.length - 1] === 0) mag.pop();
  return mag;
}

// NVIDIA's reference: Q from the slice's own nonzero bins; no smoothing, so a q of 0 under
// a p > 0 makes the divergence infinite.
function klObjective(mag: number[], i: number, levels: number): number {
  const P = mag.slice(0, i);
  for (let k = i; k < mag.length; k++) P[i - 1] += mag[k];
  const Q = new Array<number>(i).fill(0);
  const per = Math.floor(i / levels);
  for (let g = 0; g < levels; g++) {
    const start = g * per;
    const end = g === levels - 1 ? i : start + per;
    let groupTotal = 0;
    let nonzero = 0;
    for (let k = start; k < end; k++) {
      groupTotal += mag[k];
      if (mag[k] > 0) nonzero++;
    }
    for (let k = start; k < end; k++) if (mag[k] > 0) Q[k] = groupTotal / nonzero;
  }
  const sumP = P.reduce((a, b) => a + b, 0);
  const sumQ = Q.reduce((a, b) => a + b, 0);
  let kl = 0;
  for (let k = 0; k < i; k++) {
    if (P[k] === 0) continue;
    if (Q[k] === 0) return Infinity;
    kl += (P[k] / sumP) * Math.log(P[k] / sumP / (Q[k] / sumQ));
  }
  return kl;
}

function bruteEntropy(h: Histogram, quantLevels: number): { range: Range; cut: number } {
  const mag = bruteMagnitudes(h);
  if (mag.length > 1) mag[0] = mag[1]; // the zero spike suppressed, as TensorRT does
  const levels = quantLevels;
  if (mag.length < levels) return { range: { min: h.min, max: h.max }, cut: -1 };
  let best = -1;
  let bestKl = Infinity;
  const first = mag.findIndex((v) => v > 0); // cuts span at least `levels` slots of data
  for (let i = Math.min(mag.length, first + levels); i <= mag.length; i++) {
    const kl = klObjective(mag, i, levels);
    if (kl <= bestKl) {
      // ties: the larger threshold
      bestKl = kl;
      best = i;
    }
  }
  const T = best * h.width;
  return { range: { min: Math.max(h.min, -T), max: Math.min(h.max, T) }, cut: best };
}

function mseObjective(h: Histogram, T: number, levels: number, symmetric = false): number {
  const a = Math.min(0, Math.max(h.min, -T));
  const b = Math.max(0, Math.min(h.max, T));
  // A symmetric grid (zero-point 0) has levels/2 - 1 steps on each side of 0.
  const step = symmetric ? Math.max(-a, b) / (levels / 2 - 1) : (b - a) / (levels - 1);
  let err = 0;
  for (let i = 0; i < h.bins; i++) {
    const c = h.counts[i];
    if (c === 0) continue;
    const x = Math.min(h.max, Math.max(h.min, h.lowEdge(i) + h.width / 2));
    if (x < a) err += c * (a - x) * (a - x);
    else if (x > b) err += c * (x - b) * (x - b);
    else err += (c * step * step) / 12;
  }
  return err;
}

function bruteMse(h: Histogram, levels: number, symmetric = false): { range: Range; cut: number } {
  const n = bruteMagnitudes(h).length;
  let best = -1;
  let bestErr = Infinity;
  for (let t = 1; t <= n; t++) {
    const err = mseObjective(h, t * h.width, levels, symmetric);
    if (err < bestErr) {
      bestErr = err;
      best = t;
    }
  }
  const T = best * h.width;
  return { range: { min: Math.max(h.min, -T), max: Math.min(h.max, T) }, cut: best };
}

/**
 * The order statistics bracketing quantile q of sorted data. Where a tail is sparse the
 * values of neighbouring ranks can be several bins apart, and which of them "the" quantile
 * is depends on the convention, so an estimate is judged against the whole bracket.
 */
function quantileBracket(sorted: Float64Array, q: number): [number, number] {
  const n = sorted.length;
  return [sorted[Math.floor(q * (n - 1))], sorted[Math.min(n - 1, Math.ceil(q * n))]];
}

function expectWithinBracket(value: number, [lo, hi]: [number, number], tolerance: number): void {
  expect(value).toBeGreaterThanOrEqual(lo - tolerance);
  expect(value).toBeLessThanOrEqual(hi + tolerance);
}

const CASES: Array<{ name: string; data: () => ArrayLike<number>; bins: number; quantLevels: number; levels: number }> = [
  ...Object.entries(DISTRIBUTIONS).map(([name, gen]) => ({ name, data: () => gen(41), bins: 2048, quantLevels: 128, levels: 256 })),
  // coarse histograms and level counts that do not divide the cut: exercises the remainder group
  { name: 'gaussian, 256 bins, 37 levels', data: () => gaussian(20_000, 42), bins: 256, quantLevels: 37, levels: 15 },
  { name: 'laplace, 64 bins, 10 levels', data: () => laplace(20_000, 43), bins: 64, quantLevels: 10, levels: 7 },
  { name: 'skewed uniform, 512 bins, 100 levels', data: () => uniform(20_000, 44, -0.2, 3), bins: 512, quantLevels: 100, levels: 16 },
];

describe('entropyRange and mseRange equal an exhaustive search', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const h = build(c.data(), c.bins);
      const ent = bruteEntropy(h, c.quantLevels);
      expect(ent.cut).toBeGreaterThan(0); // the search did run
      expect(entropyRange(h, { quantLevels: c.quantLevels })).toEqual(ent.range);
      const mse = bruteMse(h, c.levels);
      expect(mseRange(h, { levels: c.levels })).toEqual(mse.range);
      const even = c.levels - (c.levels % 2); // a symmetric grid needs an even count
      expect(mseRange(h, { levels: even, symmetric: true })).toEqual(bruteMse(h, even, true).range);
    });
  }

  it('a symmetric grid (zero-point 0) costs a one-sided tensor half its steps, so MSE clips it harder', () => {
    const h = build(DISTRIBUTIONS.reluLike(47), 2048);
    expect(mseRange(h, { symmetric: true }).max).toBeLessThan(mseRange(h).max);
  });
});

describe('percentileRange', () => {
  for (const [name, gen] of Object.entries(DISTRIBUTIONS)) {
    it(`${name}: matches sort-based quantiles within one bin width`, () => {
      const data = gen(51);
      const h = build(data);
      const sorted = Float64Array.from(data).sort();
      for (const p of [99, 99.9, 99.99, 99.999, 100]) {
        const r = percentileRange(h, p);
        expectWithinBracket(r.min, quantileBracket(sorted, (100 - p) / 100), h.width);
        expectWithinBracket(r.max, quantileBracket(sorted, p / 100), h.width);
      }
      expect(percentileRange(h, 100)).toEqual(minMaxRange(h));
    });
  }
});

describe('estimator behaviour', () => {
  const all = (h: Histogram): Record<string, Range> => ({
    minmax: minMaxRange(h),
    percentile: percentileRange(h),
    entropy: entropyRange(h),
    mse: mseRange(h),
  });

  it('heavy-tailed data: percentile clips the outliers; entropy keeps the bulk', () => {
    const h = build(DISTRIBUTIONS.heavyTailed(61));
    const maxAbs = Math.max(-h.min, h.max);
    expect(maxAbs).toBeGreaterThan(50);
    // TensorRT's objective is unsmoothed: a cut whose last slot is empty under clipped
    // outliers has infinite divergence, so sparse far outliers are clipped only at a slot
    // that holds data. It must still keep the Gaussian bulk.
    const e = entropyRange(h);
    expect(e.max).toBeGreaterThan(2.5);
    expect(e.min).toBeLessThan(-2.5);
    for (const r of [percentileRange(h, 99.9)]) {
      expect(r.max).toBeLessThan(0.2 * maxAbs);
      expect(r.min).toBeGreaterThan(-0.2 * maxAbs);
      expect(r.max).toBeGreaterThan(2.5); // but keep the Gaussian bulk
      expect(r.min).toBeLessThan(-2.5);
    }
  });

  it('heavy-tailed data: mse keeps isolated far outliers, as its objective demands', () => {
    // 100 outliers at 50-100 sigma cost ~100 * 75^2 = 5.6e5 if clipped to the bulk, while
    // keeping them costs 1e5 * (200/255)^2 / 12 = 5e3 of rounding error: MSE must not clip.
    const h = build(DISTRIBUTIONS.heavyTailed(61));
    const r = mseRange(h);
    expect(r.max).toBeGreaterThan(0.5 * h.max);
    expect(mseObjective(h, r.max, 256)).toBeLessThan(mseObjective(h, percentileRange(h, 99.9).max, 256));
  });

  it('long continuous tail (Laplace): every clipping estimator clips below the max', () => {
    const h = build(DISTRIBUTIONS.laplace(62));
    for (const [name, r] of Object.entries(all(h))) {
      if (name === 'minmax') continue;
      expect(r.max, name).toBeLessThan(h.max);
      expect(r.min, name).toBeGreaterThan(h.min);
    }
  });

  it('uniform data: every estimator stays close to the observed range', () => {
    const h = build(DISTRIBUTIONS.uniform(63));
    for (const [name, r] of Object.entries(all(h))) {
      expect(r.max, name).toBeGreaterThan(0.98 * h.max);
      expect(r.min, name).toBeLessThan(0.98 * h.min);
    }
  });

  it('non-negative data stays non-negative', () => {
    const h = build(DISTRIBUTIONS.reluLike(64));
    for (const r of Object.values(all(h))) {
      // percentile interpolates inside the bin holding the zeros: off by less than a bin
      expect(r.min).toBeGreaterThanOrEqual(0);
      expect(r.min).toBeLessThan(h.width);
      expect(r.max).toBeGreaterThan(1);
      expect(r.max).toBeLessThanOrEqual(h.max);
    }
  });

  it('ranges lie inside the observed range and are ordered', () => {
    for (const gen of Object.values(DISTRIBUTIONS)) {
      const h = build(gen(65));
      for (const r of Object.values(all(h))) {
        expect(r.min).toBeGreaterThanOrEqual(h.min);
        expect(r.max).toBeLessThanOrEqual(h.max);
        expect(r.min).toBeLessThanOrEqual(r.max);
      }
    }
  });

  it('empty, all-zero, constant and NaN-laden input never give NaN', () => {
    expect(all(new Histogram())).toEqual({ minmax: { min: 0, max: 0 }, percentile: { min: 0, max: 0 }, entropy: { min: 0, max: 0 }, mse: { min: 0, max: 0 } });
    expect(Object.values(all(build(new Float32Array(100))))).toEqual(new Array(4).fill({ min: 0, max: 0 }));
    for (const v of [3, -2.5, 1e-30]) {
      expect(Object.values(all(build(new Float64Array(100).fill(v))))).toEqual(new Array(4).fill({ min: v, max: v }));
    }
    const nanny = Float64Array.from(gaussian(10_000, 66), (x, i) => (i % 7 === 0 ? NaN : i % 11 === 0 ? -Infinity : x));
    for (const r of Object.values(all(build(nanny)))) {
      expect(Number.isFinite(r.min) && Number.isFinite(r.max)).toBe(true);
    }
    // a decayed-to-almost-nothing histogram still answers
    const faded = build(gaussian(1000, 67));
    for (let i = 0; i < 200; i++) faded.decay(0.01);
    for (const r of Object.values(all(faded))) expect(Number.isNaN(r.min) || Number.isNaN(r.max)).toBe(false);
  });

  it('a single huge outlier: percentile clips it; entropy has no finite cut below it', () => {
    const data = new Float32Array(gaussian(100_000, 68));
    data[123] = 1e6;
    const h = build(data);
    // One value sets the bin width for everything (512 here): the Gaussian bulk now sits in
    // two bins, so no estimator can do better than one bin of resolution.
    expect(h.width).toBe(512);
    // Every slot between the bulk and the outlier is empty: every cut there is infinite.
    expect(entropyRange(h).max).toBe(h.max);
    const sorted = Float64Array.from(data).sort();
    expectWithinBracket(percentileRange(h, 99.99).max, quantileBracket(sorted, 0.9999), h.width);
  });

  it('entropy does not clamp a tensor far from 0 to a constant', () => {
    // |x| in [0.8, 1.8], all negative: the reference's first cut piles everything into one bin.
    const data = uniform(50_000, 70, -1.8, -0.8);
    const r = entropyRange(build(data));
    expect(r.min).toBeLessThan(-1.6);
  });

  it('data far from 0 (window without 0) is handled', () => {
    const data = uniform(20_000, 69, 1000, 1001);
    const h = build(data);
    expect(h.offset).toBeGreaterThan(0);
    for (const r of Object.values(all(h))) {
      expect(r.min).toBeGreaterThanOrEqual(1000);
      expect(r.max).toBeLessThanOrEqual(h.max);
    }
    // With 0 in the quantized range the step is ~1000/255, so clipping every value to
    // ~1000 (error < 1) is cheaper than the s^2/12 ~ 1.3 rounding error of keeping them.
    expect(mseRange(h).max).toBeGreaterThan(999);
    expect(percentileRange(h, 99).max).toBeCloseTo(1000.99, 2);
  });

  it('fewer magnitude slots than quantLevels: entropy returns the observed range', () => {
    const h = build(gaussian(1000, 70), 64);
    expect(entropyRange(h)).toEqual(minMaxRange(h));
  });

  it('bad options throw OptionError', () => {
    const h = build(gaussian(100, 72));
    for (const p of [50, 49, 100.01, NaN, -1]) expect(() => percentileRange(h, p)).toThrow(OptionError);
    for (const q of [1, 0, 2.5, NaN]) expect(() => entropyRange(h, { quantLevels: q })).toThrow(OptionError);
    for (const l of [1, 0, 3.5]) expect(() => mseRange(h, { levels: l })).toThrow(OptionError);
  });
});

describe('exact zeros', () => {
  it('a Relu output that is mostly zeros does not drive entropy to its smallest cut', () => {
    // 90% exact zeros, the rest spread uniformly over (0, 6]: the right clip is near 6.
    const data = new Float64Array(100_000);
    for (let i = 0; i < data.length; i++) data[i] = i % 10 === 0 ? ((i / 10) % 1000) * 0.006 + 0.006 : 0;
    const h = new Histogram(2048);
    h.update(data);
    expect(entropyRange(h).max).toBeGreaterThan(5);
  });
});

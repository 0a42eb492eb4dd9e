import { describe, expect, it } from 'vitest';
import { Histogram } from '../../src/calibration/index.js';
import { DataError, OptionError } from '../../src/common/index.js';
import { DISTRIBUTIONS, batches, gaussian, rng, shuffle, uniform } from './data.js';

function build(data: ArrayLike<number>, bins = 2048): Histogram {
  const h = new Histogram(bins);
  h.update(data);
  return h;
}

/** The layout and counts, as plain data, for exact comparison. */
function state(h: Histogram) {
  return { exp: h.exp, offset: h.offset, counts: Array.from(h.counts), min: h.min, max: h.max, total: h.total, seen: h.seen, nonFinite: h.nonFinite };
}

/** Counts recomputed from the definition: value x belongs to bin floor(x / width). */
function bruteCounts(data: ArrayLike<number>, h: Histogram): number[] {
  const out = new Array<number>(h.bins).fill(0);
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (!Number.isFinite(x)) continue;
    let k = Math.floor(x / h.width);
    if (x < 0 && k === 0) k = -1; // the quotient underflowed to -0; its true floor is -1
    const slot = k - h.offset;
    if (slot < 0 || slot >= h.bins) throw new Error(`value ${x} falls outside the window (slot ${slot})`);
    out[slot]++;
  }
  return out;
}

/**
 * Order statistics bracketing quantile q: in a sparse tail neighbouring ranks can be bins
 * apart, and which one is "the" quantile is a convention, so judge against both.
 */
function quantileBracket(sorted: Float64Array, q: number): [number, number] {
  const n = sorted.length;
  return [sorted[Math.floor(q * (n - 1))], sorted[Math.min(n - 1, Math.ceil(q * n))]];
}

const EXTRA: Record<string, (seed: number) => Float32Array | Float64Array> = {
  // far from 0 with a tiny spread: the layout must not be forced to contain 0
  offsetNarrow: (s) => Float64Array.from(gaussian(20_000, s), (x) => 1000 + 1e-3 * x),
  tiny: (s) => Float64Array.from(gaussian(20_000, s), (x) => 1e-30 * x),
  huge: (s) => Float64Array.from(uniform(20_000, s), (x) => 1e300 * x),
  positiveOnly: (s) => uniform(20_000, s, 3, 7),
};

describe('Histogram layout', () => {
  for (const [name, gen] of Object.entries({ ...DISTRIBUTIONS, ...EXTRA })) {
    it(`${name}: counts follow floor(x / 2**exp) and exp is the smallest that fits`, () => {
      const data = gen(11);
      const h = build(data);
      expect(h.width).toBe(2 ** h.exp);
      expect(Number.isInteger(h.exp)).toBe(true);
      expect(h.counts.length).toBe(h.bins);
      expect(Array.from(h.counts)).toEqual(bruteCounts(data, h));
      expect(h.offset).toBe(Math.floor(h.min / h.width));
      // one notch finer no longer fits the observed span
      const finer = h.width / 2;
      expect(Math.floor(h.max / finer) - Math.floor(h.min / finer)).toBeGreaterThanOrEqual(h.bins);
      expect(h.total).toBe(data.length);
      expect(h.seen).toBe(data.length);
    });
  }
});

describe('Histogram merge is exact', () => {
  for (const [name, gen] of Object.entries({ ...DISTRIBUTIONS, ...EXTRA })) {
    it(`${name}: batches via update and via merge (shuffled) equal one pass`, () => {
      const data = gen(21);
      const whole = build(data);
      const parts = shuffle(batches(data as Float32Array, 5, 3000), 9);

      const streamed = new Histogram();
      for (const p of parts) streamed.update(p);
      expect(state(streamed)).toEqual(state(whole));

      const merged = new Histogram();
      const separate = parts.map((p) => build(p));
      for (const p of shuffle(separate, 13)) merged.merge(p);
      expect(state(merged)).toEqual(state(whole));

      // and a tree of merges of merges
      const left = new Histogram();
      const right = new Histogram();
      separate.forEach((p, i) => (i % 2 ? left : right).merge(p));
      right.merge(left);
      expect(state(right)).toEqual(state(whole));
    });
  }

  it('zeros first, then growing magnitudes, then a far outlier', () => {
    const r = rng(3);
    const parts: Float64Array[] = [
      new Float64Array(100),
      Float64Array.from({ length: 500 }, () => 1e-6 * (r() - 0.5)),
      Float64Array.from({ length: 500 }, () => r() - 0.5),
      Float64Array.of(7, 7, 7),
      Float64Array.of(-1e6),
      Float64Array.from({ length: 500 }, () => 100 * r()),
    ];
    const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    const whole = build(all);
    for (let seed = 0; seed < 6; seed++) {
      const streamed = new Histogram();
      const merged = new Histogram();
      for (const p of shuffle(parts, seed)) {
        streamed.update(p);
        merged.merge(build(p));
      }
      expect(state(streamed)).toEqual(state(whole));
      expect(state(merged)).toEqual(state(whole));
    }
  });

  it('a stream whose min creeps down batch by batch (in-place slide) equals one pass', () => {
    const data = uniform(20_000, 12, -1, 1).sort().reverse();
    const streamed = new Histogram();
    for (let i = 0; i < data.length; i += 10) streamed.update(data.subarray(i, i + 10));
    expect(state(streamed)).toEqual(state(build(data)));
  });

  it('merging an empty histogram changes nothing; merging into an empty one copies', () => {
    const h = build(gaussian(1000, 1));
    const before = state(h);
    h.merge(new Histogram());
    expect(state(h)).toEqual(before);
    const e = new Histogram();
    e.merge(h);
    expect(state(e)).toEqual(before);
  });

  it('refuses to merge histograms with different bin counts', () => {
    expect(() => new Histogram(2048).merge(new Histogram(1024))).toThrow(OptionError);
  });
});

describe('Histogram.quantile', () => {
  for (const [name, gen] of Object.entries(DISTRIBUTIONS)) {
    it(`${name}: matches a sort-based quantile within one bin width`, () => {
      const data = gen(31);
      const h = build(data);
      const sorted = Float64Array.from(data).sort();
      for (const q of [0, 1e-5, 1e-4, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.99999, 1]) {
        const got = h.quantile(q);
        const [lo, hi] = quantileBracket(sorted, q);
        expect(got).toBeGreaterThanOrEqual(lo - h.width);
        expect(got).toBeLessThanOrEqual(hi + h.width);
        expect(got).toBeGreaterThanOrEqual(h.min);
        expect(got).toBeLessThanOrEqual(h.max);
      }
      expect(h.quantile(0)).toBe(h.min);
      expect(h.quantile(1)).toBe(h.max);
    });
  }

  it('is monotone in q', () => {
    const h = build(DISTRIBUTIONS.heavyTailed(2));
    let prev = -Infinity;
    for (let q = 0; q <= 1; q += 1 / 256) {
      const v = h.quantile(q);
      expect(v).toBeGreaterThanOrEqual(prev);
      prev = v;
    }
  });

  it('rejects q outside [0, 1]', () => {
    const h = build([1, 2, 3]);
    for (const q of [-0.1, 1.5, NaN]) expect(() => h.quantile(q)).toThrow(OptionError);
  });
});

describe('Histogram edge cases', () => {
  it('empty', () => {
    const h = new Histogram();
    expect(h.empty).toBe(true);
    expect([h.min, h.max, h.total, h.seen, h.quantile(0.5)]).toEqual([0, 0, 0, 0, 0]);
    expect(h.usedRange()).toBeNull();
    h.update([]);
    expect(h.empty).toBe(true);
  });

  it('all zeros keeps no width and merges exactly with later data', () => {
    const h = build(new Float32Array(1000));
    expect([h.min, h.max, h.total, h.offset]).toEqual([0, 0, 1000, 0]);
    expect(h.usedRange()).toEqual({ first: 0, last: 0 });
    expect(h.quantile(0.5)).toBe(0);
    const later = gaussian(1000, 4);
    h.update(later);
    const all = new Float32Array(2000);
    all.set(later, 1000);
    expect(state(h)).toEqual(state(build(all)));
  });

  it('-0 is counted as 0', () => {
    const h = build([-0, 0, -0]);
    expect(Object.is(h.min, 0)).toBe(true);
    expect(h.counts[0]).toBe(3);
  });

  it('constant nonzero value: one bin, width from its magnitude, quantiles exact', () => {
    for (const v of [3.25, -0.1, 1e-20, -7e200]) {
      const h = build(new Float64Array(500).fill(v));
      expect(h.usedRange()!.first).toBe(h.usedRange()!.last);
      expect(h.width).toBeLessThanOrEqual(Math.abs(v) * 2 ** -50);
      expect(h.quantile(0.3)).toBe(v);
      // widening later must still be exact
      const more = Float64Array.of(v * 3, -v, 0);
      h.update(more);
      const all = new Float64Array(503).fill(v);
      all.set(more, 500);
      expect(state(h)).toEqual(state(build(all)));
    }
  });

  it('a single huge outlier widens the bins but keeps every count', () => {
    const data = gaussian(10_000, 5);
    const h = build(data);
    const fine = h.width;
    h.update([1e9]);
    expect(h.max).toBe(1e9);
    expect(h.width).toBeGreaterThan(fine);
    expect(h.total).toBe(10_001);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(10_001);
    expect(h.quantile(0.5)).toBeLessThan(h.width); // the bulk collapsed near 0, not lost
  });

  it('extreme doubles keep the layout exact', () => {
    const data = [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, -Number.MIN_VALUE, 0, 1];
    const h = build(data);
    expect(h.total).toBe(6);
    expect(Array.from(h.counts)).toEqual(bruteCounts(data, h));
    const m = new Histogram();
    for (const x of shuffle(data, 1)) m.merge(build([x]));
    expect(state(m)).toEqual(state(h));
  });

  it('NaN and ±Infinity are skipped and counted', () => {
    const h = build([1, NaN, 2, Infinity, -Infinity, 3]);
    expect(h.nonFinite).toBe(3);
    expect([h.min, h.max, h.total, h.seen]).toEqual([1, 3, 3, 3]);
    const only = build([NaN, NaN]);
    expect(only.empty).toBe(true);
    expect(only.nonFinite).toBe(2);
    h.merge(only);
    expect(h.nonFinite).toBe(5);
  });

  it('float32 input (the fast, laned path) counts exactly like plain numbers', () => {
    const r = rng(11);
    // Mostly exact zeros plus a skewed tail on both sides, large enough for the count lanes.
    const big = Float32Array.from({ length: 70_000 }, () => (r() < 0.5 ? 0 : (r() - 0.3) * 8 * r() ** 3));
    const small = big.subarray(0, 999);
    const tiny = Float32Array.from([-1e-40, 1e-45, -3.5, 0, -0]);
    for (const data of [big, small, tiny]) {
      for (const bins of [64, 2048]) expect(state(build(data, bins))).toEqual(state(build(Array.from(data), bins)));
    }
    const withNaN = Float32Array.from([1, NaN, 2, Infinity]);
    expect(state(build(withNaN))).toEqual(state(build(Array.from(withNaN))));
    // Growing over several float32 batches equals one pass over them all.
    const grown = new Histogram(512);
    for (let i = 0; i < 7; i++) grown.update(big.subarray(i * 10_000, (i + 1) * 10_000));
    expect(state(grown)).toEqual(state(build(Array.from(big), 512)));
  });

  it('decay scales counts and total, keeps exact min/max and the sample count', () => {
    const h = build(gaussian(10_000, 6));
    const before = Array.from(h.counts);
    h.decay(0.25);
    expect(Array.from(h.counts)).toEqual(before.map((c) => c * 0.25));
    expect(h.total).toBe(2500);
    expect(h.seen).toBe(10_000);
    expect(h.min).toBe(build(gaussian(10_000, 6)).min);
    // new data now outweighs the old 4:1 in the quantiles
    h.update(new Float32Array(10_000).fill(0.5));
    expect(h.quantile(0.5)).toBeCloseTo(0.5, 2);
    for (const f of [0, -1, 1.5, NaN]) expect(() => h.decay(f)).toThrow(OptionError);
  });

  it('toJSON/fromJSON round-trips through JSON text', () => {
    for (const data of [gaussian(5000, 7), new Float32Array(10), Float64Array.of(5), new Float32Array(0)]) {
      const h = build(data);
      h.update([NaN]);
      const back = Histogram.fromJSON(JSON.parse(JSON.stringify(h)));
      expect(state(back)).toEqual(state(h));
      // the restored histogram keeps merging exactly
      const more = uniform(1000, 8, -3, 3);
      back.update(more);
      h.update(more);
      expect(state(back)).toEqual(state(h));
    }
    const j = build(gaussian(5000, 7)).toJSON();
    expect(j.counts.length).toBeLessThanOrEqual(2048);
    expect(j.counts[0]).toBeGreaterThan(0);
    expect(j.counts[j.counts.length - 1]).toBeGreaterThan(0);
  });

  it('fromJSON rejects malformed input', () => {
    const good = build(gaussian(100, 1)).toJSON();
    for (const bad of [null, 3, {}, { ...good, kind: 'x' }, { ...good, counts: [-1] }, { ...good, exp: 2000 }, { ...good, offset: good.offset + 5 }, { ...good, min: (good.max as number) + 1 }]) {
      expect(() => Histogram.fromJSON(bad)).toThrow(DataError);
    }
  });

  it('bad bins throw OptionError', () => {
    for (const b of [15, 0, -5, 100.5, NaN, 2 ** 24]) expect(() => new Histogram(b)).toThrow(OptionError);
    expect(new Histogram(16).bins).toBe(16);
  });

  it('memory stays O(bins) whatever the number of samples', () => {
    const h = new Histogram(64);
    for (let i = 0; i < 50; i++) h.update(gaussian(2000, i));
    expect(h.counts.length).toBe(64);
    expect(h.toJSON().counts.length).toBeLessThanOrEqual(64);
  });
});

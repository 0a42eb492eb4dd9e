// Thinned histogram taps: a strided subset counted under the whole tensor's exact extremes.
// The histogram rule is checked with plain arrays; the tap and the calibrator against a real
// ORT session on a small conv net whose first maps are large enough to be thinned.
import { describe, expect, it } from 'vitest';
import { Calibrator, Histogram, arraySource, toFeeds } from '../../src/calibration/index.js';
import { THIN_MIN_VALUES, rank4Tensors, thinnedOutputs, withThinnedTaps } from '../../src/calibration/thinning.js';
import { ModelBuilder, type ModelProto } from '../../src/onnx/index.js';
import { ActivationTap } from '../../src/runtime/index.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function randomData(n: number, seed: number, scale = 3): Float32Array {
  const r = seeded(seed);
  return Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * scale);
}

describe('Histogram.updateSubset', () => {
  const whole = randomData(40_000, 1);
  const subset = whole.filter((_, i) => i % 4 === 0);
  const lo = Math.min(...whole);
  const hi = Math.max(...whole);

  it('lays out and bounds the histogram like the whole tensor, and counts only the subset', () => {
    const full = new Histogram();
    full.update(whole);
    const thin = new Histogram();
    thin.updateSubset(subset, lo, hi);
    expect([thin.min, thin.max, thin.exp, thin.offset]).toEqual([full.min, full.max, full.exp, full.offset]);
    const expected = new Float64Array(thin.bins);
    for (const x of subset) expected[Math.floor(x / 2 ** thin.exp) - thin.offset]++;
    expect(thin.counts).toEqual(expected);
    expect([thin.total, thin.seen]).toEqual([subset.length, subset.length]);
  });

  it('counts the subset like any data when the extremes are not finite, or the subset is not', () => {
    const plain = new Histogram();
    plain.update(subset);
    const noExtremes = new Histogram();
    noExtremes.updateSubset(subset, NaN, hi);
    expect(noExtremes.toJSON()).toEqual(plain.toJSON());

    const dirty = Float32Array.from([...subset.slice(0, 100), NaN, Infinity]);
    const checked = new Histogram();
    checked.update(dirty);
    const thin = new Histogram();
    thin.updateSubset(dirty, lo, hi);
    expect(thin.toJSON()).toEqual(checked.toJSON());
    expect(thin.nonFinite).toBe(2);
  });
});

/** x [N,1,96,96] → Conv 1→12 → Relu → Conv 12→4: the first two maps hold 110,592 values a sample. */
function twoConvNet(): ModelProto {
  const r = seeded(7);
  const b = new ModelBuilder(13);
  b.input('x', ['N', 1, 96, 96]);
  b.initializer('w1', [12, 1, 3, 3], Array.from({ length: 108 }, () => r() - 0.5));
  b.initializer('b1', [12], Array.from({ length: 12 }, () => r() * 0.2));
  b.initializer('w2', [4, 12, 3, 3], Array.from({ length: 432 }, () => (r() - 0.5) * 0.3));
  const c1 = b.op('Conv', ['x', 'w1', 'b1'], { pads: [1, 1, 1, 1] }, 'conv1');
  const relu = b.op('Relu', [c1], {}, 'relu1');
  const c2 = b.op('Conv', [relu, 'w2'], { pads: [1, 1, 1, 1] }, 'conv2');
  b.output(c2, ['N', 4, 96, 96]);
  return b.build();
}

function images(count: number, seed: number) {
  return arraySource({ x: { data: randomData(count * 96 * 96, seed, 1), dims: [count, 1, 96, 96] } });
}

describe('thinned taps in ORT', () => {
  it('yield every other row and column of the tensor, and its exact extremes', async () => {
    const model = twoConvNet();
    const tensors = rank4Tensors(model, ['x', 'conv1_out', 'relu1_out', 'conv2_out']);
    expect(tensors).toEqual(['x', 'conv1_out', 'relu1_out', 'conv2_out']);
    const tap = await ActivationTap.create(withThinnedTaps(model, ['conv1_out']), ['conv1_out', ...thinnedOutputs('conv1_out')]);
    try {
      for await (const batch of images(2, 3).batches(2)) {
        const { tensors: out } = await tap.run(toFeeds(batch));
        const full = out.get('conv1_out')!;
        const [values, lo, hi] = thinnedOutputs('conv1_out').map((t) => out.get(t)!);
        const expected: number[] = [];
        for (let plane = 0; plane < 2 * 12; plane++) {
          for (let y = 0; y < 96; y += 2) for (let x = 0; x < 96; x += 2) expected.push(full[plane * 96 * 96 + y * 96 + x]);
        }
        expect(Array.from(values)).toEqual(expected);
        expect([lo[0], hi[0]]).toEqual([full.reduce((a, v) => Math.min(a, v)), full.reduce((a, v) => Math.max(a, v))]);
      }
    } finally {
      await tap.release();
    }
  });
});

describe('a calibrator with thinned histograms', () => {
  async function calibrated(thinHistograms: boolean) {
    const c = await Calibrator.create(twoConvNet(), { method: 'percentile', percentile: 99.9, thinHistograms });
    try {
      await c.observeAll(images(6, 11));
      return { ranges: c.ranges(), thinned: c.thinnedTensors, profile: c.build().profile };
    } finally {
      await c.release();
    }
  }

  it('thins only the maps of at least THIN_MIN_VALUES values, and lands near the exact ranges', async () => {
    const thin = await calibrated(true);
    const exact = await calibrated(false);
    // x and conv2_out hold 9,216 and 36,864 values a sample: below the threshold.
    expect(96 * 96 * 12).toBeGreaterThanOrEqual(THIN_MIN_VALUES);
    expect(96 * 96 * 4).toBeLessThan(THIN_MIN_VALUES);
    expect(thin.thinned.sort()).toEqual(['conv1_out', 'relu1_out'].filter((t) => thin.ranges.has(t)).sort());
    expect(thin.thinned.length).toBeGreaterThan(0);
    expect(exact.thinned).toEqual([]);
    expect(thin.profile.options.thinnedTensors).toBe(thin.thinned.length);
    expect(exact.profile.options.thinnedTensors).toBeUndefined();
    expect([...thin.ranges.keys()].sort()).toEqual([...exact.ranges.keys()].sort());
    const counted = [...exact.ranges.keys()].filter((t) => !thin.thinned.includes(t));
    for (const t of counted) expect(thin.ranges.get(t)).toEqual(exact.ranges.get(t));
    for (const t of thin.thinned) {
      const r = exact.ranges.get(t)!;
      const got = thin.ranges.get(t)!;
      expect(Math.abs(got.min - r.min)).toBeLessThan(0.05 * (r.max - r.min));
      expect(Math.abs(got.max - r.max)).toBeLessThan(0.05 * (r.max - r.min));
    }
  });
});

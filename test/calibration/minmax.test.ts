import { describe, expect, it } from 'vitest';
import { MinMaxObserver, MovingAverageMinMaxObserver } from '../../src/calibration/index.js';
import { DataError, OptionError } from '../../src/common/index.js';
import { batches, gaussian, shuffle, uniform } from './data.js';

function extremes(data: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) continue;
    min = Math.min(min, data[i]);
    max = Math.max(max, data[i]);
  }
  return { min, max };
}

describe('MinMaxObserver', () => {
  it('tracks the exact extremes of finite values, in batches or merged', () => {
    const data = gaussian(50_000, 1);
    data[10] = NaN;
    data[20] = Infinity;
    data[30] = -Infinity;
    const parts = batches(data, 2, 5000);
    const streamed = new MinMaxObserver();
    for (const p of parts) streamed.update(p);
    expect(streamed.range()).toEqual(extremes(data));
    expect(streamed.samples).toBe(50_000 - 3);
    const merged = new MinMaxObserver();
    for (const p of shuffle(parts, 3)) {
      const o = new MinMaxObserver();
      o.update(p);
      merged.merge(o);
    }
    expect(merged.range()).toEqual(streamed.range());
    expect(merged.samples).toBe(streamed.samples);
  });

  it('empty and non-finite-only input give {0, 0}', () => {
    const o = new MinMaxObserver();
    expect(o.range()).toEqual({ min: 0, max: 0 });
    o.update([NaN, Infinity]);
    expect(o.range()).toEqual({ min: 0, max: 0 });
    expect(o.samples).toBe(0);
    o.merge(new MinMaxObserver());
    expect(o.range()).toEqual({ min: 0, max: 0 });
  });

  it('round-trips through JSON text', () => {
    for (const data of [uniform(100, 4), []]) {
      const o = new MinMaxObserver();
      o.update(data);
      const back = MinMaxObserver.fromJSON(JSON.parse(JSON.stringify(o)));
      expect(back.range()).toEqual(o.range());
      expect(back.samples).toBe(o.samples);
    }
    expect(() => MinMaxObserver.fromJSON({ kind: 'minmax', version: 1, min: 2, max: 1, samples: 3 })).toThrow(DataError);
    expect(() => MinMaxObserver.fromJSON(null)).toThrow(DataError);
  });
});

describe('MovingAverageMinMaxObserver', () => {
  it('first batch initialises, later batches move by the constant', () => {
    const c = 0.1;
    const o = new MovingAverageMinMaxObserver(c);
    const parts = [uniform(1000, 5, -1, 1), uniform(1000, 6, -3, 2), uniform(1000, 7, -0.5, 5), [NaN, NaN], uniform(1000, 8, -2, 2)];
    let expected: { min: number; max: number } | null = null;
    for (const p of parts) {
      o.update(p);
      if (!Array.from(p).some(Number.isFinite)) continue; // ignored by design
      const b = extremes(p);
      expected = expected === null ? b : { min: (1 - c) * expected.min + c * b.min, max: (1 - c) * expected.max + c * b.max };
      expect(o.range().min).toBeCloseTo(expected.min, 12);
      expect(o.range().max).toBeCloseTo(expected.max, 12);
    }
    expect(o.samples).toBe(4000);
  });

  it('forgets a transient spike, unlike the plain observer', () => {
    const ma = new MovingAverageMinMaxObserver(0.05);
    const plain = new MinMaxObserver();
    const feed = (d: ArrayLike<number>) => {
      ma.update(d);
      plain.update(d);
    };
    for (let i = 0; i < 20; i++) feed(uniform(500, 100 + i));
    feed(Float64Array.of(-1000, 1000));
    expect(ma.range().max).toBeGreaterThan(40);
    for (let i = 0; i < 200; i++) feed(uniform(500, 200 + i));
    expect(ma.range().max).toBeLessThan(1.1);
    expect(plain.range().max).toBe(1000);
  });

  it('constant 1 tracks the last batch', () => {
    const o = new MovingAverageMinMaxObserver(1);
    o.update([1, 2, 3]);
    o.update([-5, 0.5]);
    expect(o.range()).toEqual({ min: -5, max: 0.5 });
  });

  it('merge is the sample-weighted mean; JSON round-trips', () => {
    const a = new MovingAverageMinMaxObserver(0.5);
    const b = new MovingAverageMinMaxObserver(0.5);
    a.update([0, 4]); // 2 samples
    b.update([-8, 0, 1, 1, 1, 1]); // 6 samples
    const c = MovingAverageMinMaxObserver.fromJSON(JSON.parse(JSON.stringify(a)));
    c.merge(b);
    expect(c.range()).toEqual({ min: -6, max: 1.75 });
    expect(c.samples).toBe(8);
    const empty = new MovingAverageMinMaxObserver(0.5);
    empty.merge(b);
    expect(empty.range()).toEqual(b.range());
    expect(empty.averagingConstant).toBe(0.5);
  });

  it('rejects constants outside (0, 1]', () => {
    for (const c of [0, -0.1, 1.5, NaN]) expect(() => new MovingAverageMinMaxObserver(c)).toThrow(OptionError);
  });
});

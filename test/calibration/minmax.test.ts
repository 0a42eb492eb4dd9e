import { describe, expect, it } from 'vitest';
import { MinMaxObserver } from '../../src/calibration/index.js';
import { DataError } from '../../src/common/index.js';
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

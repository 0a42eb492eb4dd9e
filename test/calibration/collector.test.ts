import { describe, expect, it } from 'vitest';
import {
  CollectorSet, Histogram, RANGE_METHODS, collectorFromJSON, createCollector, entropyRange, mseRange, percentileRange,
  type RangeMethod,
} from '../../src/calibration/index.js';
import { DataError, OptionError } from '../../src/common/index.js';
import { DISTRIBUTIONS, batches, gaussian, laplace, shuffle, uniform } from './data.js';

const roundTrip = (x: { toJSON(): unknown }) => JSON.parse(JSON.stringify(x.toJSON()));

describe('createCollector', () => {
  it('each method gives its estimator on the data seen', () => {
    const data = DISTRIBUTIONS.heavyTailed(1);
    const h = new Histogram(1024);
    h.update(data);
    const expected: Record<RangeMethod, unknown> = {
      minmax: { min: h.min, max: h.max },
      percentile: percentileRange(h, 99.9),
      entropy: entropyRange(h, { quantLevels: 64 }),
      mse: mseRange(h, { levels: 128 }),
    };
    for (const method of RANGE_METHODS) {
      const c = createCollector(method, { bins: 1024, percentile: 99.9, quantLevels: 64, levels: 128 });
      for (const p of batches(data, 2, 7000)) c.update(p);
      expect(c.method).toBe(method);
      expect(c.range(), method).toEqual(expected[method]);
      expect(c.samples).toBe(data.length);
    }
  });

  it('uses 2048 bins and the documented defaults', () => {
    const data = laplace(30_000, 3);
    const h = new Histogram(2048);
    h.update(data);
    const ranges = Object.fromEntries(RANGE_METHODS.map((m: RangeMethod) => {
      const c = createCollector(m);
      c.update(data);
      return [m, c.range()];
    }));
    expect(ranges.percentile).toEqual(percentileRange(h, 99.999));
    expect(ranges.entropy).toEqual(entropyRange(h, { quantLevels: 128 }));
    expect(ranges.mse).toEqual(mseRange(h, { levels: 256 }));
  });

  it('merging collectors from separate workers equals one collector over all data', () => {
    const data = DISTRIBUTIONS.laplace(4);
    const parts = batches(data, 5, 10_000);
    for (const method of RANGE_METHODS) {
      const whole = createCollector(method);
      whole.update(data);
      const merged = createCollector(method);
      for (const p of shuffle(parts, 6)) {
        const w = createCollector(method);
        w.update(p);
        merged.merge(collectorFromJSON(roundTrip(w))); // as if it came from a worker thread
      }
      expect(merged.range(), method).toEqual(whole.range());
      expect(merged.toJSON(), method).toEqual(whole.toJSON());
    }
  });

  it('refuses to merge incompatible collectors', () => {
    expect(() => createCollector('entropy').merge(createCollector('mse'))).toThrow(OptionError);
    expect(() => createCollector('minmax').merge(createCollector('percentile'))).toThrow(OptionError);
    expect(() => createCollector('percentile').merge(createCollector('percentile', { bins: 512 }))).toThrow(OptionError);
  });

  it('decay lets new data take over a histogram collector (drift)', () => {
    const c = createCollector('percentile', { percentile: 99 });
    c.update(gaussian(50_000, 7, 0, 1)); // day
    const before = c.range();
    for (let i = 0; i < 10; i++) {
      c.decay(0.5);
      c.update(gaussian(5000, 100 + i, 0, 4)); // night: sensor gain x4
    }
    const after = c.range();
    expect(after.max).toBeGreaterThan(3 * before.max);
    expect(c.samples).toBe(100_000);
    // without decay the old data would still hold the percentile down
    const stale = createCollector('percentile', { percentile: 99 });
    stale.update(gaussian(50_000, 7, 0, 1));
    for (let i = 0; i < 10; i++) stale.update(gaussian(5000, 100 + i, 0, 4));
    expect(stale.range().max).toBeLessThan(after.max);
  });

  it('decay is a no-op for plain minmax and still validates the factor', () => {
    const c = createCollector('minmax');
    c.update([-3, 5]);
    c.decay(0.5);
    expect(c.range()).toEqual({ min: -3, max: 5 });
    for (const m of RANGE_METHODS) for (const f of [0, 2, NaN]) expect(() => createCollector(m).decay(f)).toThrow(OptionError);
  });

  it('toJSON / collectorFromJSON round-trip every method, and keep working', () => {
    for (const method of RANGE_METHODS) {
      for (const opts of [{}, { bins: 256 }]) {
        const c = createCollector(method, opts);
        c.update(uniform(5000, 8, -2, 3));
        const back = collectorFromJSON(roundTrip(c));
        expect(back.method).toBe(method);
        expect(back.range()).toEqual(c.range());
        expect(back.samples).toBe(c.samples);
        const more = gaussian(3000, 9);
        back.update(more);
        c.update(more);
        expect(back.toJSON()).toEqual(c.toJSON());
      }
    }
  });

  it('bad options throw OptionError, bad JSON throws DataError', () => {
    const bad: Array<[RangeMethod, object]> = [
      ['percentile', { bins: 8 }],
      ['entropy', { bins: 1000.5 }],
      ['percentile', { percentile: 50 }],
      ['percentile', { percentile: 100.5 }],
      ['entropy', { quantLevels: 1 }],
      ['mse', { levels: 0 }],
    ];
    for (const [m, o] of bad) expect(() => createCollector(m, o), JSON.stringify(o)).toThrow(OptionError);
    expect(() => createCollector('kl' as RangeMethod)).toThrow(OptionError);
    for (const j of [null, {}, { kind: 'collector', version: 2 }, { ...createCollector('mse').toJSON() as object, state: { kind: 'histogram' } }]) {
      expect(() => collectorFromJSON(j)).toThrow(DataError);
    }
  });
});

describe('CollectorSet', () => {
  const tensors = {
    conv1: (s: number) => DISTRIBUTIONS.reluLike(s).subarray(0, 20_000),
    ['__proto__']: (s: number) => // computed key: a real own property, not the prototype
      DISTRIBUTIONS.heavyTailed(s).subarray(0, 20_000),
    'fc/out:0': (s: number) => DISTRIBUTIONS.gaussian(s).subarray(0, 20_000),
  };

  it('collects per tensor; merged device sets equal one set over all data', () => {
    const whole = new CollectorSet('entropy');
    const devices = [new CollectorSet('entropy'), new CollectorSet('entropy')];
    for (const [name, gen] of Object.entries(tensors)) {
      for (let s = 0; s < 4; s++) {
        const data = gen(s);
        whole.update(name, data);
        devices[s % 2].update(name, data);
      }
    }
    devices[1].update('only-on-device-1', [1, 2, 3]);
    whole.update('only-on-device-1', [1, 2, 3]);
    expect(whole.size).toBe(4);
    expect(whole.names()).toContain('__proto__');

    const pooled = new CollectorSet('entropy');
    for (const d of devices) pooled.merge(CollectorSet.fromJSON(JSON.parse(JSON.stringify(d))));
    expect([...pooled.ranges()].sort()).toEqual([...whole.ranges()].sort());
    expect(pooled.get('conv1')!.samples).toBe(80_000);

    const ranges = whole.ranges();
    expect(ranges.get('conv1')!.min).toBe(0);
    // entropy's cut lies inside what was observed (TensorRT's unsmoothed objective may keep
    // sparse far outliers: see estimators.ts)
    const observedMax = (whole.get('__proto__')!.toJSON() as { state: { max: number } }).state.max;
    expect(ranges.get('__proto__')!.max).toBeLessThanOrEqual(observedMax);
    expect(ranges.get('__proto__')!.max).toBeGreaterThan(0);
  });

  it('round-trips through JSON, decays every tensor, and stays O(tensors x bins)', () => {
    const set = new CollectorSet('percentile', { bins: 128, percentile: 99 });
    for (let s = 0; s < 20; s++) for (const [name, gen] of Object.entries(tensors)) set.update(name, gen(s));
    const text = JSON.stringify(set);
    expect(text.length).toBeLessThan(3 * 128 * 25 + 2000); // counts only, never samples
    const back = CollectorSet.fromJSON(JSON.parse(text));
    expect(back.method).toBe('percentile');
    expect(back.options.percentile).toBe(99);
    expect([...back.ranges()]).toEqual([...set.ranges()]);
    set.decay(0.5);
    for (const name of set.names()) {
      expect((set.get(name)!.toJSON() as { state: { total: number } }).state.total).toBe(20 * 20_000 * 0.5);
    }
  });

  it('rejects merges across methods and malformed JSON', () => {
    expect(() => new CollectorSet('mse').merge(new CollectorSet('percentile'))).toThrow(OptionError);
    expect(() => new CollectorSet('mse', { levels: 1 })).toThrow(OptionError);
    expect(() => CollectorSet.fromJSON({ kind: 'collector-set', version: 1, method: 'mse', options: {}, tensors: [{ name: 3 }] })).toThrow(DataError);
    expect(() => CollectorSet.fromJSON('nope')).toThrow(DataError);
    const dup = new CollectorSet('minmax');
    dup.update('a', [1]);
    const j = dup.toJSON();
    expect(() => CollectorSet.fromJSON({ ...j, tensors: [...j.tensors, ...j.tensors] })).toThrow(DataError);
  });
});

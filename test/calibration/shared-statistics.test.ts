// Shared statistics with plain arrays: a bundle survives JSON with sparse counts, bundles of
// several "devices" merge into exactly the statistics of all their data at once, and the
// merge refuses what does not belong together.
import { describe, expect, it } from 'vitest';
import {
  CollectorSet, RANGE_METHODS, StatisticsMerger, collectorsOf, fleetCalibration, mergeRefusal, mergeStatistics, parseFleetCalibration, parseStatistics, statisticsBundle,
  type RangeMethod, type StatisticsBundle,
} from '../../src/calibration/index.js';
import { DataError, OptionError } from '../../src/common/index.js';
import { gaussian, laplace } from './data.js';

const SHA = 'a'.repeat(64);
const about = (devices: string[], sampleCount = 10) => ({ sourceModelSha256: SHA, graph: 'g1', equalization: 'none', sampleCount, devices });

/** Three "devices" seeing different scenes of two tensors. */
function scenes(): Float32Array[][] {
  return [
    [gaussian(20_000, 1), laplace(5_000, 2)],
    [gaussian(20_000, 3).map((x) => x * 4 + 1), laplace(5_000, 4).map((x) => x * 0.1)],
    [gaussian(20_000, 5).map((x) => Math.abs(x) * 9), laplace(5_000, 6)],
  ];
}

function device(method: RangeMethod, data: Float32Array[], id: string): StatisticsBundle {
  const set = new CollectorSet(method);
  data.forEach((d, t) => set.update(`t${t}`, d));
  return JSON.parse(JSON.stringify(statisticsBundle(set, about([id]))));
}

describe('shared statistics', () => {
  it('merged bundles give exactly the ranges of one collector fed all the data', () => {
    for (const method of RANGE_METHODS) {
      const parts = scenes();
      const merged = mergeStatistics(parts.map((d, k) => device(method, d, `dev-${k}`)));
      const all = new CollectorSet(method);
      for (const d of parts) d.forEach((x, t) => all.update(`t${t}`, x));
      expect(collectorsOf(merged).ranges(), method).toEqual(all.ranges());
      expect(merged.devices).toEqual(['dev-0', 'dev-1', 'dev-2']);
      expect(merged.sampleCount).toBe(30);
    }
  });

  it('sends counts sparse: a histogram with two far-apart values costs two runs, not the bins between', () => {
    const set = new CollectorSet('mse');
    set.update('t', Float32Array.of(0, 0, 0, 1000, 1000));
    const b = statisticsBundle(set, about(['d']));
    const state = b.tensors[0].state as { sparse: number[]; counts?: unknown };
    expect(state.counts).toBeUndefined();
    expect(state.sparse.length).toBe(4);
    expect(collectorsOf(parseStatistics(JSON.parse(JSON.stringify(b)))).ranges()).toEqual(set.ranges());
  });

  it('faded counts travel with six significant digits, and the total is their sum', () => {
    const set = new CollectorSet('percentile');
    const [data] = scenes();
    for (let i = 0; i < 20; i++) {
      set.decay(0.98);
      set.update('t', data[0].subarray(i * 1000, (i + 1) * 1000));
    }
    const back = collectorsOf(parseStatistics(JSON.parse(JSON.stringify(statisticsBundle(set, about(['d']))))));
    const [a, b] = [set.get('t')!.toJSON() as any, back.get('t')!.toJSON() as any];
    expect(b.state.counts.length).toBe(a.state.counts.length);
    a.state.counts.forEach((c: number, i: number) => expect(Math.abs(b.state.counts[i] - c)).toBeLessThanOrEqual(c * 5e-6));
    expect(b.state.total).toBeCloseTo(b.state.counts.reduce((s: number, c: number) => s + c, 0), 9);
    const [ra, rb] = [set.ranges().get('t')!, back.ranges().get('t')!];
    expect(Math.abs(rb.max - ra.max)).toBeLessThan((ra.max - ra.min) * 1e-4);
  });

  it('histograms serve any method, minmax included; extremes serve minmax only', () => {
    const [data] = scenes();
    const hist = device('percentile', data, 'd');
    const direct = new CollectorSet('minmax');
    data.forEach((d, t) => direct.update(`t${t}`, d));
    expect(collectorsOf(hist, 'minmax').ranges()).toEqual(direct.ranges());
    const mse = new CollectorSet('mse');
    data.forEach((d, t) => mse.update(`t${t}`, d));
    expect(collectorsOf(hist, 'mse').ranges()).toEqual(mse.ranges());
    expect(() => collectorsOf(device('minmax', data, 'd'), 'mse')).toThrow(OptionError);
  });

  it('refuses to merge another model, another graph, other bins or another kind of statistic', () => {
    const [data] = scenes();
    const ref = device('mse', data, 'a');
    expect(mergeRefusal(ref, device('percentile', data, 'b'))).toBeNull();
    expect(mergeRefusal(ref, { ...ref, sourceModelSha256: 'b'.repeat(64) })).toMatch(/another model/);
    expect(mergeRefusal(ref, { ...ref, graph: 'g2' })).toMatch(/another prepared graph/);
    expect(mergeRefusal(ref, { ...ref, equalization: 'activations' })).toMatch(/its own samples/);
    expect(mergeRefusal(ref, device('minmax', data, 'b'))).toMatch(/cannot merge/);
    expect(mergeRefusal(ref, { ...ref, options: { ...ref.options, bins: 1024 } })).toMatch(/1024 bins/);
    expect(() => mergeStatistics([ref, { ...ref, graph: 'g2' }])).toThrow(OptionError);
    expect(() => mergeStatistics([])).toThrow(OptionError);
  });

  it('StatisticsMerger merges as bundles arrive and keeps the model most devices serve', () => {
    const parts = scenes();
    const merger = new StatisticsMerger();
    const other = { ...device('mse', parts[0], 'other-model'), sourceModelSha256: 'b'.repeat(64) };
    merger.add(other);
    parts.forEach((d, k) => merger.add(device('mse', d, `dev-${k}`)));
    merger.add({ ...device('mse', parts[0], 'fresh'), sampleCount: 0 });
    const { merged, skipped } = merger.result();
    expect(merged!.devices).toEqual(['dev-0', 'dev-1', 'dev-2']);
    expect(collectorsOf(merged!).ranges()).toEqual(collectorsOf(mergeStatistics(parts.map((d, k) => device('mse', d, `dev-${k}`)))).ranges());
    expect(skipped).toEqual([
      { device: 'fresh', reason: 'no samples yet' },
      { device: 'other-model', reason: expect.stringMatching(/another model/) },
    ]);
    // Asked for the other model, the three are the ones left out.
    expect(merger.result('b'.repeat(64)).merged!.devices).toEqual(['other-model']);
    expect(merger.result('c'.repeat(64)).merged).toBeNull();
  });

  it('parseStatistics names what is wrong with a file', () => {
    const ok = device('mse', scenes()[0], 'a');
    expect(() => parseStatistics({ ...ok, format: 'other' }, 'x.json')).toThrow(/x.json: not calibd statistics/);
    expect(() => parseStatistics({ ...ok, version: 2 })).toThrow(/version 2/);
    expect(() => parseStatistics({ ...ok, sourceModelSha256: 'nope' })).toThrow(DataError);
    expect(() => collectorsOf({ ...ok, tensors: [{ name: 't', state: { kind: 'histogram', sparse: [1] } }] })).toThrow(/bad sparse counts/);
  });

  it('a fleet calibration carries one range per tensor and parses back to them', () => {
    const merged = mergeStatistics(scenes().map((d, k) => device('mse', d, `dev-${k}`)));
    const c = fleetCalibration(merged, 'percentile');
    expect(c.method).toBe('percentile');
    const { ranges } = parseFleetCalibration(JSON.parse(JSON.stringify(c)));
    expect(ranges).toEqual(collectorsOf(merged, 'percentile').ranges());
    expect(() => parseFleetCalibration({ ...c, ranges: [['t0', 2, 1]] })).toThrow(/min <= max/);
    expect(() => parseFleetCalibration({ ...c, ranges: [['t0', 0, 1], ['t0', 0, 1]] })).toThrow(/twice/);
    expect(() => parseFleetCalibration({ ...c, format: 'calibd-stats' })).toThrow(DataError);
  });
});

// The greedy policy of selectInt8Nodes with plain numbers: what each step drops, in which
// order, and when it gives up on INT8. The "measurements" are tables: a variant's accuracy
// and latency ratio as functions of the nodes left FP32.
import { describe, expect, it } from 'vitest';
import { greedySelection, isolatedNodes, slowerInInt8, type Figures, type SelectionEvidence, type Timing, type VariantMeasure } from '../../src/calibration/index.js';

const fig = (agreement: number, sqnrDb = 40): Figures => ({ agreement, sqnrDb, value: agreement });
const timing = (ratio: number): Timing => ({ fp32Ms: 1, int8Ms: ratio, ratio });

function evidence(over: Partial<SelectionEvidence> = {}): SelectionEvidence {
  return {
    candidates: ['a', 'b', 'c', 'd'],
    fp32Us: new Map([['a', 100], ['b', 100], ['c', 100], ['d', 100]]),
    int8Us: new Map([['a', 40], ['b', 60], ['c', 80], ['d', 90]]),
    sensitivityDb: new Map(),
    sensitivityBaseDb: 40,
    boundaryUs: 0,
    neighbours: new Map([['a', ['b']], ['b', ['a', 'c']], ['c', ['b', 'd']], ['d', ['c']]]),
    full: { acc: fig(1), time: timing(0.8) },
    ...over,
  };
}

/** Accuracy and ratio of a variant from functions of its FP32 set; records what was measured. */
function table(acc: (ex: Set<string>) => Figures, ratio: (ex: Set<string>) => number, int8Of = 4) {
  const measured: string[][] = [];
  const m: VariantMeasure = {
    accuracy: async (ex) => acc(new Set(ex)),
    time: async (ex) => {
      measured.push([...ex]);
      return timing(ratio(new Set(ex)));
    },
    int8Nodes: (ex) => int8Of - ex.length,
  };
  return { m, measured };
}

const limits = { meets: (f: Figures) => f.agreement >= 0.99, target: 1, prefer: 0.9, maxTimings: 8, timingsUsed: 1 };

describe('greedySelection', () => {
  it('keeps full INT8 when it is inside both budgets', async () => {
    const { m } = table(() => fig(1), () => 0.8);
    const r = await greedySelection(evidence(), m, limits);
    expect(r.exclude).toEqual([]);
    expect(r.steps).toEqual([]);
    expect(r.final.time.ratio).toBe(0.8);
  });

  it('drops a node the profile shows slower, when the timing agrees', async () => {
    const ev = evidence({ int8Us: new Map([['a', 40], ['b', 160], ['c', 80], ['d', 90]]) });
    expect(slowerInInt8(ev)).toEqual(['b']);
    const { m } = table(() => fig(1), (ex) => (ex.has('b') ? 0.7 : 0.8));
    const r = await greedySelection(ev, m, limits);
    expect(r.exclude).toEqual(['b']);
    expect(r.reasons.get('b')).toBe('INT8 60 µs slower');
    expect(r.steps.map((s) => [s.step, s.kept])).toEqual([['slower in INT8 (profile)', true]]);
  });

  it('finds isolated nodes: INT8 with only FP32 neighbours and a gain below the boundary cost', () => {
    const ev = evidence({ boundaryUs: 30 });
    expect(isolatedNodes(ev, ['c'])).toEqual(['d']);
    expect(isolatedNodes(ev, [])).toEqual([]);
  });

  it('leaves FP32 the fewest most-sensitive nodes that meet the accuracy budget', async () => {
    const ev = evidence({ sensitivityDb: new Map([['a', 41], ['b', 48], ['c', 45], ['d', 40.5]]), full: { acc: fig(0.95), time: timing(0.8) } });
    // Budget met once b and c (the two most sensitive) are FP32.
    const { m } = table((ex) => fig(ex.has('b') && ex.has('c') ? 0.995 : 0.95), () => 0.85);
    const r = await greedySelection(ev, m, limits);
    expect(r.exclude).toEqual(['b', 'c']);
    expect(r.reasons.get('b')).toBe('sensitive: +8.0 dB when FP32');
    expect(r.final.acc.agreement).toBe(0.995);
  });

  it('drops the smallest gains until the latency target holds', async () => {
    // Ratio falls below 1 once d (smallest gain) is FP32.
    const { m, measured } = table(() => fig(1), (ex) => (ex.has('d') ? 0.95 : 1.1));
    const r = await greedySelection(evidence({ full: { acc: fig(1), time: timing(1.1) } }), m, limits);
    expect(measured[0]).toEqual(['d']);
    // Then one more try for the preferred 0.9 (c), not kept: it does not improve.
    expect(measured[1]).toEqual(['d', 'c']);
    expect(r.exclude).toEqual(['d']);
    expect(r.final.time.ratio).toBeLessThanOrEqual(1);
  });

  it('answers all FP32 when the confirming timing does not reproduce the gain', async () => {
    // Full INT8 timed at 0.8 with no timing left for the search; the final timing says 1.2.
    const { m } = table(() => fig(1), () => 1.2);
    const r = await greedySelection(evidence({ full: { acc: fig(1), time: timing(0.8) } }), m, { ...limits, maxTimings: 1 });
    expect(r.exclude).toEqual(['a', 'b', 'c', 'd']);
    expect(r.reasons.get('a')).toBe('the final timing did not confirm the gain');
  });
});

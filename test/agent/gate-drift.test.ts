// The pure parts of the daemon's policy: the validation gate and the drift score.
import { describe, expect, it } from 'vitest';
import { DriftMonitor, gate, psi } from '../../src/agent/index.js';
import { mulberry32 } from '../../src/common/index.js';
import { parseMetric } from '../../src/calibration/index.js';

const fig = (agreement: number, sqnrDb: number, samples = 100) => ({ agreement, sqnrDb, samples });

describe('gate', () => {
  it('with nothing to beat, the candidate must clear the floor', () => {
    expect(gate(fig(0.98, 20), null).accept).toBe(true);
    expect(gate(fig(0.96, 40), null).accept).toBe(false);
  });
  it('accepts better agreement, and equal agreement with at least the SQNR', () => {
    expect(gate(fig(0.99, 20), fig(0.98, 40)).accept).toBe(true);
    expect(gate(fig(0.98, 35), fig(0.98, 35)).accept).toBe(true);
    expect(gate(fig(0.98, 34), fig(0.98, 35)).accept).toBe(false);
  });
  it('refuses a loss of agreement beyond the margin, allows one within it', () => {
    expect(gate(fig(0.97, 50), fig(0.98, 30)).accept).toBe(false);
    expect(gate(fig(0.97, 50), fig(0.98, 30), 1).accept).toBe(true);
    // A margin accepts what it allows, even at a lower SQNR (a fleet calibration's slack).
    expect(gate(fig(0.98, 30), fig(0.98, 31), 0.5).accept).toBe(true);
    expect(gate(fig(0.975, 30), fig(0.98, 31), 0.5).accept).toBe(true);
    expect(gate(fig(0.974, 40), fig(0.98, 31), 0.5).accept).toBe(false);
  });
  it('judges a detector on its mask IoU, not on argmax agreement', () => {
    const iou = parseMetric('mask-iou:0.3');
    const det = (value: number, sqnrDb: number) => ({ agreement: 0.1, sqnrDb, samples: 50, value, metric: iou.name });
    expect(gate(det(0.96, 15), null, 0, 0.95, iou)).toEqual({ accept: true, reason: 'mask-iou:0.3 0.9600 clears the 0.9500 floor (nothing to beat)' });
    expect(gate(det(0.94, 15), null, 0, 0.95, iou).accept).toBe(false);
    expect(gate(det(0.955, 15), det(0.96, 14), 0, 0.95, iou).accept).toBe(false); // loses 0.5 points
    expect(gate(det(0.955, 15), det(0.96, 14), 1, 0.95, iou).accept).toBe(true);
  });
  it('sqnr: the margin is in dB', () => {
    const sq = parseMetric('sqnr');
    const f = (v: number) => ({ agreement: 0, sqnrDb: v, samples: 10, value: v });
    expect(gate(f(29.5), f(30), 1, 20, sq).accept).toBe(true);
    expect(gate(f(28.5), f(30), 1, 20, sq).accept).toBe(false);
  });
  it('never accepts without validation samples', () => {
    expect(gate(fig(1, 99, 0), null)).toEqual({ accept: false, reason: 'no validation samples' });
  });
});

describe('drift', () => {
  const sample = (rand: () => number, gain: number) => Float32Array.from({ length: 784 }, () => Math.min(1, rand() * rand() * gain));
  it('PSI is 0 for identical distributions and grows with the shift', () => {
    expect(psi([1, 2, 3], [2, 4, 6])).toBeCloseTo(0, 12);
    const small = psi([10, 10, 10, 10], [11, 10, 9, 10]);
    const large = psi([10, 10, 10, 10], [30, 5, 3, 2]);
    expect(small).toBeGreaterThan(0);
    expect(large).toBeGreaterThan(10 * small);
  });
  it('the monitor scores 0 right after a rebase and rises when the inputs change', () => {
    const rand = mulberry32(4);
    const m = new DriftMonitor({ min: 0, max: 1 });
    expect(m.score()).toBe(0); // no reference yet
    for (let i = 0; i < 200; i++) m.observe(sample(rand, 1));
    m.rebase();
    expect(m.score()).toBeCloseTo(0, 12);
    for (let i = 0; i < 50; i++) m.observe(sample(rand, 1));
    const stable = m.score();
    for (let i = 0; i < 200; i++) m.observe(sample(rand, 3));
    expect(stable).toBeLessThan(0.05);
    expect(m.score()).toBeGreaterThan(0.2);
  });
});

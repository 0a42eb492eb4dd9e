// The sampler with plain tensors: which requests are sampled, the copy a sample is, and the
// content hash that holds one sample in five out for validation.
import { describe, expect, it } from 'vitest';
import { HOLDOUT_EVERY, isHoldout } from '../../src/agent/index.js';
import { isSampled, sampleOf } from '../../src/agent/sampler.js';
import { mulberry32 } from '../../src/common/index.js';

function randomSample(rand: () => number): { input: { shape: number[]; data: Float32Array } } {
  return { input: { shape: [1, 8], data: Float32Array.from({ length: 8 }, () => rand()) } };
}

describe('holdout', () => {
  it('holds out about one sample in five, decided by content alone', () => {
    const rand = mulberry32(7);
    const samples = Array.from({ length: 5000 }, () => randomSample(rand));
    const held = samples.filter((s) => isHoldout(s)).length;
    expect(HOLDOUT_EVERY).toBe(5);
    expect(held / samples.length).toBeGreaterThan(0.17);
    expect(held / samples.length).toBeLessThan(0.23);
    // The same content (a copy, as re-read from the buffer after a restart) gets the same answer.
    for (const s of samples.slice(0, 200)) expect(isHoldout({ input: { shape: [1, 8], data: s.input.data.slice() } })).toBe(isHoldout(s));
  });

  it('does not depend on the order inputs are listed in', () => {
    const a = { shape: [1, 2], data: Float32Array.of(0.25, 0.5) };
    const b = { shape: [1, 2], data: Float32Array.of(0.75, 1) };
    expect(isHoldout({ a, b })).toBe(isHoldout({ b, a }));
  });
});

describe('sampling', () => {
  it('takes one request in oneIn', () => {
    expect(isSampled(1, 0.999)).toBe(true);
    expect(isSampled(4, 0.24)).toBe(true);
    expect(isSampled(4, 0.25)).toBe(false);
  });

  it('copies the request\'s tensors, a batch as its first row', () => {
    const data = Float32Array.of(1, 2, 3, 4, 5, 6);
    const one = sampleOf({ x: { shape: [1, 6], data } });
    data[0] = 99;
    expect(Array.from(one.x.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const batch = sampleOf({ x: { shape: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6) } });
    expect(batch.x.shape).toEqual([1, 2]);
    expect(Array.from(batch.x.data)).toEqual([1, 2]);
  });
});

// Which live inputs become samples, and which samples are held out for validation. Pure:
// plain tensors in, decisions and copies out; the agent feeds the worker and the buffer.
//
// Held-out samples are chosen by a hash of their content, so the same rows are held out
// whether they arrive live or are re-read from the buffer after a restart.

import type { StoredSample } from '../state/index.js';
import type { WireSample } from './worker-protocol.js';

/** One sample in this many is held out for validation. */
export const HOLDOUT_EVERY = 5;
/** Sampled inputs waiting for the worker beyond this are dropped (and counted). */
export const MAX_BACKLOG = 64;

/** True for the samples kept out of the statistics and used to validate candidates. */
export function isHoldout(sample: WireSample): boolean {
  let h = 0x811c9dc5;
  for (const name of Object.keys(sample).sort()) {
    const d = sample[name].data;
    const step = Math.max(1, Math.floor(d.length / 64));
    for (let i = 0; i < d.length; i += step) {
      h ^= Math.round(d[i] * 1e6) | 0;
      h = Math.imul(h, 0x01000193);
    }
  }
  return (h >>> 0) % HOLDOUT_EVERY === 0;
}

/** One request in `oneIn` is sampled; `random` is in [0, 1). */
export function isSampled(oneIn: number, random: number): boolean {
  return random * oneIn < 1;
}

/**
 * A request's inputs as a sample the request no longer owns (its buffers are reused once
 * the response is sent). A batch is sampled as its first row: every row looks alike to the
 * statistics.
 */
export function sampleOf(inputs: Record<string, { shape: number[]; data: Float32Array }>): WireSample {
  const sample: WireSample = {};
  for (const [name, t] of Object.entries(inputs)) {
    const n = t.shape[0] ?? 1;
    if (n !== 1) {
      const per = t.data.length / n;
      sample[name] = { shape: [1, ...t.shape.slice(1)], data: t.data.slice(0, per) };
    } else sample[name] = { shape: [...t.shape], data: t.data.slice() };
  }
  return sample;
}

/** A buffered sample as the worker takes it. */
export function toWire(s: StoredSample): WireSample {
  const w: WireSample = {};
  for (const [name, t] of Object.entries(s.inputs)) w[name] = { shape: t.shape, data: t.data };
  return w;
}

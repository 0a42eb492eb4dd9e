// Where calibration samples come from: anything that yields batches of named float32
// tensors. Sources stream, so calibrating on N samples needs memory for one batch, not N.

import { DataError } from '../common/index.js';
import { ort } from '../runtime/index.js';

export interface FloatBatch {
  data: Float32Array;
  /** Shape with the batch along axis 0. */
  dims: number[];
}

export type Batch = Record<string, FloatBatch>;

export interface SampleSource {
  /** Number of samples the source yields (after any limit). */
  readonly count: number;
  batches(batchSize: number): AsyncIterable<Batch>;
}

/** A source over tensors already in memory (tests, the daemon's buffer slices). */
export function arraySource(inputs: Batch, limit = Infinity): SampleSource {
  const names = Object.keys(inputs);
  if (names.length === 0) throw new DataError('no inputs given', { hint: 'pass at least one input tensor' });
  const n = inputs[names[0]].dims[0];
  for (const name of names) {
    if (inputs[name].dims[0] !== n) {
      throw new DataError(`input '${name}' has ${inputs[name].dims[0]} samples, '${names[0]}' has ${n}`, {
        value: name,
        hint: 'give every input the same number of samples',
      });
    }
  }
  const count = Math.min(n, limit);
  return {
    count,
    async *batches(batchSize: number) {
      for (let start = 0; start < count; start += batchSize) {
        const end = Math.min(count, start + batchSize);
        const batch: Batch = {};
        for (const name of names) {
          const { data, dims } = inputs[name];
          const per = dims.slice(1).reduce((a, b) => a * b, 1);
          batch[name] = { data: data.subarray(start * per, end * per), dims: [end - start, ...dims.slice(1)] };
        }
        yield batch;
      }
    },
  };
}

export function toFeeds(batch: Batch): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(batch)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
  return feeds;
}

/**
 * Drops samples holding NaN or Infinity (they would poison every range); returns the
 * cleaned batch (or null when nothing is left) and how many were dropped.
 */
export function dropNonFinite(batch: Batch): { batch: Batch | null; dropped: number } {
  const names = Object.keys(batch);
  const n = batch[names[0]].dims[0];
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    let ok = true;
    for (const name of names) {
      const { data, dims } = batch[name];
      const per = dims.slice(1).reduce((a, b) => a * b, 1);
      for (let j = i * per; j < (i + 1) * per; j++) {
        if (!Number.isFinite(data[j])) {
          ok = false;
          break;
        }
      }
      if (!ok) break;
    }
    if (ok) keep.push(i);
  }
  if (keep.length === n) return { batch, dropped: 0 };
  if (keep.length === 0) return { batch: null, dropped: n };
  const out: Batch = {};
  for (const name of names) {
    const { data, dims } = batch[name];
    const per = dims.slice(1).reduce((a, b) => a * b, 1);
    const copy = new Float32Array(keep.length * per);
    keep.forEach((i, k) => copy.set(data.subarray(i * per, (i + 1) * per), k * per));
    out[name] = { data: copy, dims: [keep.length, ...dims.slice(1)] };
  }
  return { batch: out, dropped: n - keep.length };
}

/** Samples [start, end) of a source, e.g. to hold out the last ones for validation. */
export function sliceSource(source: SampleSource, start: number, end: number): SampleSource {
  const stop = Math.min(end, source.count);
  return {
    count: Math.max(0, stop - start),
    async *batches(batchSize: number) {
      let pos = 0;
      for await (const b of source.batches(batchSize)) {
        const names = Object.keys(b);
        const n = b[names[0]].dims[0];
        const lo = Math.max(start - pos, 0);
        const hi = Math.min(stop - pos, n);
        if (hi > lo) {
          const out: Batch = {};
          for (const name of names) {
            const { data, dims } = b[name];
            const per = dims.slice(1).reduce((a, d) => a * d, 1);
            out[name] = { data: data.subarray(lo * per, hi * per), dims: [hi - lo, ...dims.slice(1)] };
          }
          yield out;
        }
        pos += n;
        if (pos >= stop) break;
      }
    },
  };
}

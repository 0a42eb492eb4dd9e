// Shared fixtures for buffer tests: temp state folders and deterministic tensors.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SampleInputs } from '../../src/state/index.js';

export function tempStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'calibd-buffer-'));
}

/** An MNIST-sized input whose values depend on `seed`, including awkward floats. */
export function image(seed: number, size = 784): Float32Array {
  const a = new Float32Array(size);
  for (let i = 0; i < size; i++) a[i] = Math.sin(seed * 1000 + i) * (i % 7 === 0 ? 1e-30 : 1);
  a[0] = -0;
  a[1] = 3.4028234663852886e38;
  a[2] = 1.401298464324817e-45;
  return a;
}

export function inputs(seed: number, size = 784): SampleInputs {
  return { x: { dtype: 'float32', shape: [1, 1, 1, size], data: image(seed, size) } };
}

export function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export const HOUR = 3_600_000;

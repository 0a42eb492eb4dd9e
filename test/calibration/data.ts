// Seeded synthetic activations for the calibration tests: deterministic, so a failure
// reproduces, and shaped like the distributions range estimators must cope with.

import { mulberry32 } from '../../src/common/random.js';

/** Seeded floats in [0, 1). */
export const rng = mulberry32;

export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Box-Muller; 1 - r() keeps the log argument in (0, 1]. */
export function gaussian(n: number, seed: number, mean = 0, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const rad = Math.sqrt(-2 * Math.log(1 - r()));
    const th = 2 * Math.PI * r();
    out[i] = mean + std * rad * Math.cos(th);
    if (i + 1 < n) out[i + 1] = mean + std * rad * Math.sin(th);
  }
  return out;
}

/** Laplace by inverse CDF. */
export function laplace(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r() - 0.5;
    out[i] = -scale * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  }
  return out;
}

/** 99.9% standard Gaussian, 0.1% outliers of random sign at 50-100 sigma. */
export function heavyTailed(n: number, seed: number): Float32Array {
  const out = gaussian(n, seed);
  const r = rng(seed ^ 0x9e3779b9);
  const outliers = Math.round(n / 1000);
  for (let j = 0; j < outliers; j++) {
    const i = Math.floor(r() * n);
    out[i] = (r() < 0.5 ? -1 : 1) * (50 + 50 * r());
  }
  return out;
}

/** ReLU of a shifted Gaussian: non-negative, with a spike at 0. */
export function reluLike(n: number, seed: number): Float32Array {
  const out = gaussian(n, seed, 0.3, 1);
  for (let i = 0; i < n; i++) if (out[i] < 0) out[i] = 0;
  return out;
}

export function shuffle<T>(items: T[], seed: number): T[] {
  const r = rng(seed);
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Splits data into consecutive batches of random sizes in [1, maxSize]. */
export function batches(data: Float32Array, seed: number, maxSize: number): Float32Array[] {
  const r = rng(seed);
  const out: Float32Array[] = [];
  for (let i = 0; i < data.length; ) {
    const size = 1 + Math.floor(r() * maxSize);
    out.push(data.subarray(i, i + size));
    i += size;
  }
  return out;
}

export const N = 100_000;
export const DISTRIBUTIONS: Record<string, (seed: number) => Float32Array> = {
  uniform: (s) => uniform(N, s),
  gaussian: (s) => gaussian(N, s),
  laplace: (s) => laplace(N, s),
  heavyTailed: (s) => heavyTailed(N, s),
  reluLike: (s) => reluLike(N, s),
};

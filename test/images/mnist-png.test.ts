// The image path end to end, through the real `calibd` binary: the bundled MNIST model
// calibrated from a folder of PNG digits with the `mnist` preset gets the same ranges as
// from the equivalent .npy files, and keeps its accuracy on held-out PNG digits.
// Tuning digits come from the seeded split's training set, reported digits from its test set.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModel } from '../../src/onnx/index.js';
import { readProfile } from '../../src/quant/index.js';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { writeMnistImages } from '../../scripts/lib/mnist-images.js';
import { paths, repoRoot } from '../helpers/paths.js';

const bin = join(repoRoot, 'bin', 'calibd.js');
function calibd(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let tune: Awaited<ReturnType<typeof writeMnistImages>>;
let report: Awaited<ReturnType<typeof writeMnistImages>>;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'calibd-png-'));
  const split = loadMnistSplit();
  tune = await writeMnistImages(join(dir, 'tune'), split.train, 0, 500);
  report = await writeMnistImages(join(dir, 'report'), split.test, 0, 2000);
}, 120_000);

describe('MNIST from PNG digits with --preprocess mnist', () => {
  it('gives the same ranges as the equivalent .npy files, and INT8 within 0.3 points of FP32 on held-out PNGs', () => {
    const fromPng = join(dir, 'png.onnx');
    const fromNpy = join(dir, 'npy.onnx');
    const a = calibd('calibrate', '--model', paths.mnistModel, '--data', tune.png, '--preprocess', 'mnist', '--out', fromPng);
    expect(a.stderr).toBe('');
    expect(a.stdout).toMatch(/500 samples/);
    const b = calibd('calibrate', '--model', paths.mnistModel, '--data', tune.npy, '--out', fromNpy);
    expect(b.stderr).toBe('');

    const png = readProfile(readModel(fromPng))!.tensors;
    const npy = readProfile(readModel(fromNpy))!.tensors;
    expect(Object.keys(png).sort()).toEqual(Object.keys(npy).sort());
    let maxDiff = 0;
    for (const t of Object.keys(npy)) maxDiff = Math.max(maxDiff, Math.abs(png[t].min - npy[t].min), Math.abs(png[t].max - npy[t].max));
    console.log(`ranges of ${Object.keys(npy).length} tensors, PNG vs .npy: max abs difference ${maxDiff}`);
    expect(png).toEqual(npy);

    const e = calibd('eval', '--fp32', paths.mnistModel, '--int8', fromPng, '--data', report.png, '--preprocess', 'mnist', '--labels', join(report.png, 'labels.json'), '--json');
    expect(e.stderr).toBe('');
    const r = JSON.parse(e.stdout) as { accuracyFp32: number; accuracyInt8: number; samples?: number };
    console.log(`2000 held-out PNG digits: FP32 ${(100 * r.accuracyFp32).toFixed(2)}%, INT8 ${(100 * r.accuracyInt8).toFixed(2)}%, difference ${(100 * (r.accuracyFp32 - r.accuracyInt8)).toFixed(2)} points`);
    expect(r.accuracyFp32).toBeGreaterThanOrEqual(0.97);
    expect(r.accuracyFp32 - r.accuracyInt8).toBeLessThanOrEqual(0.003);
  }, 600_000);
});

// Writes the MNIST test set and a calibration set as NumPy files, for the CLI, benchmarks
// and Python cross-checks:
//
//   npx tsx scripts/write-mnist-npy.ts [outDir=data/mnist] [--calib 500]
//
//   <outDir>/test-inputs.npy        float32 [2000,1,28,28]  the 2,000 test digits
//   <outDir>/test-labels.npy        int64   [2000]
//   <outDir>/calib/train-<N>.npy    float32 [N,1,28,28]     the first N training digits
//
// The digits come from loadMnistSplit(), the same seeded split the model was trained on,
// so calibration never sees a test digit.

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeNpy } from '../src/common/index.js';
import { IMAGE_SIZE, loadMnistSplit } from './lib/mnist-data.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { calib: { type: 'string', default: '500' } },
});
if (positionals.length > 1) {
  console.error('usage: write-mnist-npy.ts [outDir=data/mnist] [--calib N]');
  process.exit(2);
}
const outDir = resolve(positionals[0] ?? join(repoRoot, 'data', 'mnist'));
const split = loadMnistSplit();
const calibCount = Number(values.calib);
if (!Number.isInteger(calibCount) || calibCount < 1 || calibCount > split.train.count) {
  console.error(`--calib must be an integer from 1 to ${split.train.count}, got '${values.calib}'`);
  process.exit(2);
}

mkdirSync(join(outDir, 'calib'), { recursive: true });
const { test, train } = split;

const testInputs = join(outDir, 'test-inputs.npy');
writeNpy(testInputs, test.images, [test.count, 1, 28, 28]);
const testLabels = join(outDir, 'test-labels.npy');
writeNpy(testLabels, BigInt64Array.from(test.labels, (l) => BigInt(l)), [test.count]);
const calib = join(outDir, 'calib', `train-${calibCount}.npy`);
writeNpy(calib, train.images.slice(0, calibCount * IMAGE_SIZE), [calibCount, 1, 28, 28]);

for (const [path, what] of [
  [testInputs, `float32 [${test.count},1,28,28]`],
  [testLabels, `int64 [${test.count}]`],
  [calib, `float32 [${calibCount},1,28,28]`],
]) console.log(`wrote ${path}  ${what}`);

// Writes MNIST digits as PNG files (and the equivalent .npy files), to try the image path:
//
//   npx tsx scripts/write-mnist-png.ts [outDir=data/mnist-png] [--calib 500] [--test 2000]
//
//   <outDir>/calib/{png,npy}/   the first N training digits: calibrate with these
//   <outDir>/test/{png,npy}/    the first M test digits, with png/labels.json: report on these
//
// Both sets come from loadMnistSplit()'s seeded split, so calibration never sees a test digit.

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadMnistSplit } from './lib/mnist-data.js';
import { writeMnistImages } from './lib/mnist-images.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({ allowPositionals: true, options: { calib: { type: 'string', default: '500' }, test: { type: 'string', default: '2000' } } });
const outDir = resolve(positionals[0] ?? join(repoRoot, 'data', 'mnist-png'));
const split = loadMnistSplit();
const calib = Number(values.calib);
const test = Number(values.test);
if (!Number.isInteger(calib) || calib < 1 || calib > split.train.count || !Number.isInteger(test) || test < 1 || test > split.test.count) {
  console.error(`--calib takes 1..${split.train.count} and --test 1..${split.test.count}`);
  process.exit(2);
}
for (const [name, set, count] of [['calib', split.train, calib], ['test', split.test, test]] as const) {
  const w = await writeMnistImages(join(outDir, name), set, 0, count);
  console.log(`wrote ${count} digits: ${w.png} and ${w.npy}`);
}

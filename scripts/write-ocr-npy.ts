// Writes inputs for the PaddleOCR models as NumPy files, built from real handwritten digits
// (scripts/lib/digit-pages.ts), for `calibd calibrate` / `calibd eval` and the benchmarks:
//
//   npx tsx scripts/write-ocr-npy.ts [outDir=data/ocr] [--calib 12] [--test 8] [--size 320] [--line-calib 64]
//
//   <outDir>/det-calib.npy   float32 [calib,3,size,size]  detector pages, MNIST train digits
//   <outDir>/det-test.npy    float32 [test,3,size,size]   detector pages, MNIST test digits
//   <outDir>/cls-calib.npy   float32 [64,3,48,192]        classifier lines (train digits; --line-calib)
//   <outDir>/cls-test.npy    float32 [300,3,48,192]       classifier lines (test digits)
//   <outDir>/rec-calib.npy   float32 [32,3,48,320]        recogniser lines (train digits; half of --line-calib)
//   <outDir>/rec-test.npy    float32 [64,3,48,320]        recogniser lines (test digits)
//
// Calibration files draw only on MNIST's training split and test files only on its test
// split, with their own seeds, so nothing reported was tuned on.

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeNpy } from '../src/common/index.js';
import { digitLines, digitPages, type DigitImages } from './lib/digit-pages.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { calib: { type: 'string', default: '12' }, test: { type: 'string', default: '8' }, size: { type: 'string', default: '320' }, 'line-calib': { type: 'string', default: '64' } },
});
const count = (name: 'calib' | 'test' | 'size' | 'line-calib', max: number): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    console.error(`--${name} must be an integer from 1 to ${max}, got '${values[name]}'`);
    process.exit(2);
  }
  return n;
};
const calib = count('calib', 1000);
const test = count('test', 1000);
const size = count('size', 4096);
const lineCalib = count('line-calib', 1000);
if (size % 32 !== 0) {
  console.error(`--size must be a multiple of 32 (the detector's stride), got ${size}`);
  process.exit(2);
}
const outDir = resolve(positionals[0] ?? join(repoRoot, 'data', 'ocr'));
mkdirSync(outDir, { recursive: true });

const files: [string, DigitImages][] = [
  ['det-calib.npy', digitPages({ count: calib, seed: 1, split: 'train', size })],
  ['det-test.npy', digitPages({ count: test, seed: 2, split: 'test', size })],
  ['cls-calib.npy', digitLines({ count: lineCalib, seed: 1, split: 'train' })],
  ['cls-test.npy', digitLines({ count: 300, seed: 2, split: 'test' })],
  ['rec-calib.npy', digitLines({ count: Math.max(1, Math.floor(lineCalib / 2)), seed: 3, split: 'train', width: 320, rotatedFraction: 0 })],
  ['rec-test.npy', digitLines({ count: 64, seed: 4, split: 'test', width: 320, rotatedFraction: 0 })],
];
for (const [name, set] of files) {
  const path = join(outDir, name);
  writeNpy(path, set.data, set.dims);
  console.log(`wrote ${path}  float32 [${set.dims.join(',')}]`);
}

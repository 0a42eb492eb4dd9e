// npx tsx scripts/arm64/data.ts OUTDIR [--calib 64] [--test 200] [--lines 32] [--line-test 64]
// Writes the small input sets the arm64 checks use, as .npy (float32, NCHW):
//   mnist-calib.npy  the first --calib MNIST training digits   [N,1,28,28]
//   mnist-test.npy   the first --test MNIST test digits        [N,1,28,28]
//   cls-calib.npy    --lines classifier text lines, train digits (seed 1)   [N,3,48,192]
//   cls-test.npy     --line-test classifier lines, test digits (seed 2)     [N,3,48,192]
// The same generators (scripts/lib) and seeds as write-mnist-npy.ts / write-ocr-npy.ts,
// fewer samples: everything here also runs under emulation.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeNpy } from '../../src/common/index.js';
import { IMAGE_SIZE, loadMnistSplit } from '../lib/mnist-data.js';
import { digitLines } from '../lib/digit-pages.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    calib: { type: 'string', default: '64' },
    test: { type: 'string', default: '200' },
    lines: { type: 'string', default: '32' },
    'line-test': { type: 'string', default: '64' },
  },
});
if (positionals.length !== 1) {
  console.error('usage: data.ts OUTDIR [--calib 64] [--test 200] [--lines 32] [--line-test 64]');
  process.exit(2);
}
const count = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1 || n > 2000) {
    console.error(`--${name} must be an integer from 1 to 2000, got '${values[name]}'`);
    process.exit(2);
  }
  return n;
};
const out = resolve(positionals[0]);
mkdirSync(out, { recursive: true });

const { train, test } = loadMnistSplit();
const calibN = count('calib');
const testN = count('test');
writeNpy(join(out, 'mnist-calib.npy'), train.images.slice(0, calibN * IMAGE_SIZE), [calibN, 1, 28, 28]);
writeNpy(join(out, 'mnist-test.npy'), test.images.slice(0, testN * IMAGE_SIZE), [testN, 1, 28, 28]);
const calibLines = digitLines({ count: count('lines'), seed: 1, split: 'train' });
const testLines = digitLines({ count: count('line-test'), seed: 2, split: 'test' });
writeNpy(join(out, 'cls-calib.npy'), calibLines.data, calibLines.dims);
writeNpy(join(out, 'cls-test.npy'), testLines.data, testLines.dims);
console.log(`data: MNIST ${calibN} calibration / ${testN} test digits, OCR classifier ${calibLines.dims[0]} / ${testLines.dims[0]} lines → ${out}`);

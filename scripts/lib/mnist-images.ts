// MNIST digits as a folder of PNG files, with the equivalent .npy files beside them, for the
// image path of the CLI and the daemon. The package's pixels are k/255 rounded to three
// decimals; a PNG holds the 8-bit k, so the .npy written alongside holds k/255 as float32,
// exactly the tensor the `mnist` preset makes of the PNG.
//
//   <dir>/png/00000.png …       28×28 8-bit grey
//   <dir>/png/labels.json       {"00000.png": 7, …}  (calibd's label convention)
//   <dir>/npy/00000.npy …       float32 [1,28,28]
//   <dir>/labels.npy            int64 [count], in file-name order

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeNpy } from '../../src/common/index.js';
import { IMAGE_SIZE, type MnistSet } from './mnist-data.js';

/** The 8-bit grey value a package pixel stands for. */
export function mnistByte(pixel: number): number {
  return Math.round(pixel * 255);
}

/** Writes digits [from, from + count) of `set` as PNGs and the equivalent .npy files under `dir`. */
export async function writeMnistImages(dir: string, set: MnistSet, from: number, count: number): Promise<{ png: string; npy: string; labels: string }> {
  const png = join(dir, 'png');
  const npy = join(dir, 'npy');
  mkdirSync(png, { recursive: true });
  mkdirSync(npy, { recursive: true });
  const labels: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const k = from + i;
    const bytes = Uint8Array.from(set.images.subarray(k * IMAGE_SIZE, (k + 1) * IMAGE_SIZE), mnistByte);
    const name = String(i).padStart(5, '0');
    await sharp(bytes, { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(png, `${name}.png`));
    writeNpy(join(npy, `${name}.npy`), Float32Array.from(bytes, (b) => b / 255), [1, 28, 28]);
    labels[`${name}.png`] = set.labels[k];
  }
  writeFileSync(join(png, 'labels.json'), JSON.stringify(labels));
  const labelsNpy = join(dir, 'labels.npy');
  writeNpy(labelsNpy, BigInt64Array.from(set.labels.subarray(from, from + count), (l) => BigInt(l)), [count]);
  return { png, npy, labels: labelsNpy };
}

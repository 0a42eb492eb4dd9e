// Inputs for the PaddleOCR models built from real handwritten digits (the `mnist` package):
// pages of digit text lines for the detector, and single lines for the direction
// classifier and the recogniser.
//
// Digits come from MNIST's fixed train/test split, so what calibrates (split 'train') and
// what reports (split 'test') never share a glyph; a seed draws the layout, paper, ink and
// noise. Pages and lines are normalised the way PaddleOCR's own pipelines do:
//   detector: (x / 255 - mean) / std with ImageNet's mean and std, NCHW;
//   classifier / recogniser: (x / 255 - 0.5) / 0.5, right-padded with 0 (after
//   normalisation) to the model's width.

import { loadMnistSplit, mulberry32, IMAGE_SIZE, type MnistSet } from './mnist-data.js';

export type DigitSplit = 'train' | 'test';

export interface DigitImages {
  /** NCHW float32. */
  data: Float32Array;
  dims: [number, number, number, number];
}

export interface DigitLines extends DigitImages {
  /** 0: upright, 1: rotated 180° (the classifier's label order). */
  labels: Uint8Array;
}

const DET_MEAN = [0.485, 0.456, 0.406];
const DET_STD = [0.229, 0.224, 0.225];

/** An RGB canvas in [0, 1], filled with slightly tinted paper. */
class Canvas {
  readonly rgb: Float32Array;
  constructor(readonly width: number, readonly height: number, rand: () => number) {
    this.rgb = new Float32Array(3 * width * height);
    const base = 0.72 + rand() * 0.25;
    const tint = [rand() * 0.08 - 0.04, rand() * 0.08 - 0.04, rand() * 0.08 - 0.04];
    // A light gradient across the page, as a camera under uneven light gives.
    const gx = (rand() - 0.5) * 0.2;
    const gy = (rand() - 0.5) * 0.2;
    const plane = width * height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const shade = base + gx * (x / width - 0.5) + gy * (y / height - 0.5);
        for (let c = 0; c < 3; c++) this.rgb[c * plane + y * width + x] = shade + tint[c];
      }
    }
  }

  /** Blends ink of colour `ink` into the canvas with coverage a in [0, 1]. */
  blend(x: number, y: number, a: number, ink: number[]): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || a <= 0) return;
    const plane = this.width * this.height;
    const i = y * this.width + x;
    for (let c = 0; c < 3; c++) this.rgb[c * plane + i] = this.rgb[c * plane + i] * (1 - a) + ink[c] * a;
  }

  addNoise(rand: () => number, sigma: number): void {
    for (let i = 0; i < this.rgb.length; i++) {
      // Sum of uniforms: cheap, roughly Gaussian sensor noise.
      const n = (rand() + rand() + rand() - 1.5) * sigma * 2;
      this.rgb[i] = Math.min(1, Math.max(0, this.rgb[i] + n));
    }
  }
}

/** Columns of a 28×28 digit that hold ink: its tight horizontal extent. */
function inkColumns(set: MnistSet, d: number): [number, number] {
  const img = set.images.subarray(d * IMAGE_SIZE, (d + 1) * IMAGE_SIZE);
  let first = 28;
  let last = -1;
  for (let x = 0; x < 28; x++) {
    for (let y = 0; y < 28; y++) {
      if (img[y * 28 + x] > 0.1) {
        first = Math.min(first, x);
        last = Math.max(last, x);
        break;
      }
    }
  }
  return last < 0 ? [10, 18] : [first, last + 1];
}

/** Bilinear sample of digit d at (u, v) in its 28×28 grid. */
function sampleDigit(set: MnistSet, d: number, u: number, v: number): number {
  const x0 = Math.floor(u);
  const y0 = Math.floor(v);
  const fx = u - x0;
  const fy = v - y0;
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= 28 || y >= 28 ? 0 : set.images[d * IMAGE_SIZE + y * 28 + x]);
  return (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
}

/**
 * Draws a line of digits with its top-left corner at (x, y), glyphs `size` pixels tall,
 * until `maxWidth` is used; returns the width drawn. Digits are drawn from `set` at random.
 */
function drawDigitLine(canvas: Canvas, set: MnistSet, rand: () => number, x: number, y: number, size: number, maxWidth: number, ink: number[]): number {
  const scale = 28 / size;
  let cx = x;
  const gap = Math.max(1, Math.round(size * (0.05 + rand() * 0.15)));
  for (;;) {
    const d = Math.floor(rand() * set.count);
    const [c0, c1] = inkColumns(set, d);
    const w = Math.max(1, Math.round((c1 - c0) / scale));
    if (cx + w - x > maxWidth) break;
    for (let py = 0; py < size; py++) {
      for (let px = 0; px < w; px++) {
        const a = sampleDigit(set, d, c0 + (px + 0.5) * scale - 0.5, (py + 0.5) * scale - 0.5);
        canvas.blend(cx + px, y + py, Math.min(1, a * 1.2), ink);
      }
    }
    cx += w + gap;
    // A word break now and then, as in real text.
    if (rand() < 0.15) cx += Math.round(size * 0.6);
  }
  return cx - x;
}

function inkColour(rand: () => number): number[] {
  const dark = 0.05 + rand() * 0.25;
  return [dark + rand() * 0.1, dark + rand() * 0.1, dark + rand() * 0.1];
}

function splitSet(split: DigitSplit): MnistSet {
  const s = loadMnistSplit();
  return split === 'train' ? s.train : s.test;
}

export interface PageOptions {
  count: number;
  seed: number;
  split: DigitSplit;
  /** Page side in pixels (default 320; the detector takes multiples of 32). */
  size?: number;
  /** Page height, when not square (default: size). */
  height?: number;
}

/** Pages of digit text lines at mixed sizes, normalised for the PaddleOCR detector. */
export function digitPages(o: PageOptions): DigitImages {
  const width = o.size ?? 320;
  const height = o.height ?? width;
  const set = splitSet(o.split);
  const rand = mulberry32(o.seed);
  const plane = width * height;
  const data = new Float32Array(o.count * 3 * plane);
  for (let n = 0; n < o.count; n++) {
    const canvas = new Canvas(width, height, rand);
    let y = Math.round(rand() * height * 0.08);
    while (y < height) {
      const size = Math.round(height * (0.04 + rand() * 0.08));
      if (y + size > height) break;
      // Some rows stay empty, some lines are short: a page is not a wall of text.
      if (rand() < 0.8) {
        const x = Math.round(rand() * width * 0.25);
        drawDigitLine(canvas, set, rand, x, y, size, Math.round((width - x) * (0.3 + rand() * 0.7)), inkColour(rand));
      }
      y += size + Math.round(size * (0.3 + rand() * 0.9));
    }
    canvas.addNoise(rand, 0.01 + rand() * 0.03);
    for (let c = 0; c < 3; c++) {
      const src = canvas.rgb.subarray(c * plane, (c + 1) * plane);
      const dst = data.subarray((n * 3 + c) * plane, (n * 3 + c + 1) * plane);
      for (let i = 0; i < plane; i++) dst[i] = (src[i] - DET_MEAN[c]) / DET_STD[c];
    }
  }
  return { data, dims: [o.count, 3, height, width] };
}

export interface LineOptions {
  count: number;
  seed: number;
  split: DigitSplit;
  /** Model input height (default 48). */
  height?: number;
  /** Model input width (default 192: the classifier; the recogniser takes 320). */
  width?: number;
  /** Share of lines rotated by 180° (default 0.5; 0 for the recogniser). */
  rotatedFraction?: number;
}

/** Single text lines of digits, PaddleOCR-normalised and right-padded like its crops. */
export function digitLines(o: LineOptions): DigitLines {
  const height = o.height ?? 48;
  const width = o.width ?? 192;
  const set = splitSet(o.split);
  const rand = mulberry32(o.seed);
  const plane = width * height;
  const data = new Float32Array(o.count * 3 * plane);
  const labels = new Uint8Array(o.count);
  for (let n = 0; n < o.count; n++) {
    // The crop is drawn at its own width, then placed left-aligned and padded.
    const used = Math.max(height, Math.round(width * (0.35 + rand() * 0.65)));
    const canvas = new Canvas(used, height, rand);
    const size = Math.round(height * (0.55 + rand() * 0.3));
    const top = Math.round((height - size) * rand());
    drawDigitLine(canvas, set, rand, Math.round(rand() * 4), top, size, used - 4, inkColour(rand));
    canvas.addNoise(rand, 0.01 + rand() * 0.03);
    const rotated = rand() < (o.rotatedFraction ?? 0.5);
    labels[n] = rotated ? 1 : 0;
    const cplane = used * height;
    for (let c = 0; c < 3; c++) {
      const dst = data.subarray((n * 3 + c) * plane, (n * 3 + c + 1) * plane);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < used; x++) {
          const sx = rotated ? used - 1 - x : x;
          const sy = rotated ? height - 1 - y : y;
          dst[y * width + x] = (canvas.rgb[c * cplane + sy * used + sx] - 0.5) / 0.5;
        }
      }
    }
  }
  return { data, dims: [o.count, 3, height, width], labels };
}

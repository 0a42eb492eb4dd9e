// Calibration cost on the real PaddleOCR models (`npm run bench -- --models`): peak RSS of
// `calibd calibrate` at N = 10, 50 and 100 with the default memory budget, and calibration
// wall time against N × the FP32 forward pass per method, the yardstick timed in the same
// run right before each calibration. Inputs are real MNIST digits laid out as pages (the
// detector) and text lines (the classifier), written as .npy files of 10 samples each.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arraySource, calibrate, toFeeds, RANGE_METHODS, type CalibrationMethod } from '../../src/calibration/index.js';
import { writeNpy } from '../../src/common/index.js';
import { readModel } from '../../src/onnx/index.js';
import { createSession } from '../../src/runtime/index.js';
import { digitLines, digitPages, type DigitImages } from '../lib/digit-pages.js';
import { ocrClassifierPath, ocrDetectorPath } from './ocr.js';
import type { BenchRow } from './row.js';

interface ModelCase {
  name: string;
  path: string;
  make: (count: number, seed: number) => DigitImages;
}

const FILE_SAMPLES = 10;
const COUNTS = [10, 50, 100];
const METHODS: CalibrationMethod[] = [...RANGE_METHODS];

function modelCases(): ModelCase[] {
  return [
    { name: 'detector 320×320', path: ocrDetectorPath(), make: (count, seed) => digitPages({ count, seed, split: 'train', size: 320 }) },
    { name: 'detector 640×640', path: ocrDetectorPath(), make: (count, seed) => digitPages({ count, seed, split: 'train', size: 640 }) },
    { name: 'classifier 48×192', path: ocrClassifierPath(), make: (count, seed) => digitLines({ count, seed, split: 'train' }) },
  ];
}

/** Folders holding the first N samples for each N, as files of FILE_SAMPLES samples. */
function writeSampleDirs(dir: string, c: ModelCase): Map<number, string> {
  const dirs = new Map<number, string>();
  const files: string[] = [];
  for (let i = 0; i < Math.max(...COUNTS) / FILE_SAMPLES; i++) {
    const set = c.make(FILE_SAMPLES, 100 + i);
    const file = join(dir, `s${String(i).padStart(3, '0')}.npy`);
    writeNpy(file, set.data, set.dims);
    files.push(file);
  }
  for (const n of COUNTS) {
    const d = join(dir, `n${n}`);
    mkdirSync(d);
    for (const f of files.slice(0, n / FILE_SAMPLES)) spawnSync('ln', ['-s', f, d]);
    dirs.set(n, d);
  }
  return dirs;
}

function peakRss(repoRoot: string, model: string, data: string, out: string): number {
  const child = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'bench', 'rss-child.mjs'), 'calibrate', '--model', model, '--data', data, '--bias-correction', 'none', '--out', out], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`calibd calibrate failed: ${child.stderr}`);
  return Number(/maxRSS=(\d+)/.exec(child.stderr)?.[1]) / 1024;
}

async function forwardMs(path: string, set: DigitImages): Promise<number> {
  const session = await createSession(readModel(path), { threads: 1 });
  const per = set.dims.slice(1).reduce((a, b) => a * b, 1);
  try {
    let best = Infinity;
    for (let rep = 0; rep < 2; rep++) {
      const t0 = performance.now();
      for (let i = 0; i < set.dims[0]; i++) {
        await session.run(toFeeds({ x: { data: set.data.subarray(i * per, (i + 1) * per), dims: [1, ...set.dims.slice(1)] } }));
      }
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  } finally {
    await session.release();
  }
}

/** Wall time of calibrate() on `set`, in ms. */
async function calibrateMs(path: string, set: DigitImages, method: CalibrationMethod): Promise<number> {
  const t0 = performance.now();
  await calibrate(readModel(path), arraySource({ x: { data: set.data, dims: set.dims } }), { method, biasCorrection: 'none' });
  return performance.now() - t0;
}

/**
 * Calibration time per method, split the way the issue states its targets: the cost of one
 * more sample (the slope between N = few and N = many) against one FP32 forward pass, and
 * the fixed set-up (the intercept). The whole run at N = many is reported too. Each
 * calibration is timed right after its own forward-pass yardstick.
 */
async function timeRows(c: ModelCase, opts: { quick: boolean; log: (s: string) => void }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const [few, many] = opts.quick ? [5, 15] : [10, 40];
  const small = c.make(few, 7);
  const large = c.make(many, 8);
  for (const method of METHODS) {
    const forward = (await forwardMs(c.path, large)) / many;
    const a = await calibrateMs(c.path, small, method);
    const b = await calibrateMs(c.path, large, method);
    const perSample = Math.max(0, (b - a) / (many - few));
    const setup = a - few * perSample;
    rows.push(
      { section: 'models', name: `${c.name}: calibrate ${method}, time per extra sample / FP32 forward`, value: perSample / forward, unit: 'ratio', target: method === 'minmax' ? '<= 1.5' : '<= 3', detail: `${perSample.toFixed(1)} ms a sample, forward ${forward.toFixed(1)} ms` },
      { section: 'models', name: `${c.name}: calibrate ${method}, fixed set-up`, value: setup / 1000, unit: 's', target: '<= 3' },
      { section: 'models', name: `${c.name}: calibrate ${method}, N=${many} / N × FP32 forward`, value: b / (many * forward), unit: 'ratio', detail: `calibrate ${b.toFixed(0)} ms (set-up included)` },
    );
    opts.log(`${c.name} ${method}: ${(perSample / forward).toFixed(1)}× forward a sample, set-up ${(setup / 1000).toFixed(1)} s, N=${many} ${(b / (many * forward)).toFixed(1)}×`);
  }
  return rows;
}

export async function modelsBench(repoRoot: string, opts: { quick: boolean; log: (s: string) => void }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'calibd-models-'));
  try {
    for (const c of modelCases()) {
      const caseDir = join(dir, c.name.replace(/\W+/g, '-'));
      mkdirSync(caseDir);
      const dirs = writeSampleDirs(caseDir, c);
      const rss = new Map<number, number>();
      for (const n of COUNTS) {
        rss.set(n, peakRss(repoRoot, c.path, dirs.get(n)!, join(caseDir, `out${n}.onnx`)));
        rows.push({ section: 'models', name: `${c.name}: peak RSS of calibd calibrate, N=${n}`, value: rss.get(n)!, unit: 'MB', target: c.name.includes('640') ? '<= 1024' : undefined });
        opts.log(`${c.name} rss n=${n}: ${rss.get(n)!.toFixed(0)} MB`);
      }
      rows.push({ section: 'models', name: `${c.name}: peak RSS N=100 / N=10`, value: rss.get(100)! / rss.get(10)!, unit: 'ratio', target: '<= 1.1' });

      rows.push(...(await timeRows(c, opts)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

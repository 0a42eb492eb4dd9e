// The technique ablation: full INT8 with cross-layer equalization (none / weights /
// activations) × bias correction (none / empirical), per method, on the PaddleOCR detector
// and classifier and the bundled MNIST CNN. Calibration sets come from MNIST's training
// split, report sets from its test split, with their own seeds, so nothing reported was
// tuned on. Run with `npm run bench -- --ablation` (a few minutes).

import { arraySource, calibrate, compareModels, type CalibrationMethod, type SampleSource } from '../../src/calibration/index.js';
import { readModel } from '../../src/onnx/index.js';
import type { BiasCorrection, Equalization } from '../../src/quant/index.js';
import { digitLines, digitPages, type DigitImages } from '../lib/digit-pages.js';
import { loadMnistSplit } from '../lib/mnist-data.js';
import { ocrClassifierPath, ocrDetectorPath } from './ocr.js';

export interface AblationRow {
  model: string;
  method: CalibrationMethod;
  equalization: Equalization;
  biasCorrection: BiasCorrection;
  /** The model's task metric: mask IoU, top-1 agreement or labelled accuracy. */
  metric: string;
  value: number;
  sqnrDb: number;
  calibrateMs: number;
}

interface Case {
  model: string;
  path: string;
  input: string;
  calib: SampleSource;
  report: SampleSource;
  labels?: ArrayLike<number>;
}

const source = (input: string, set: DigitImages): SampleSource => arraySource({ [input]: { data: set.data, dims: set.dims } });

function cases(mnistPath: string, quick: boolean): Case[] {
  const { train, test } = loadMnistSplit();
  const mnistTrain = arraySource({ input: { data: train.images.subarray(0, 500 * 784), dims: [500, 1, 28, 28] } });
  const mnistTest = arraySource({ input: { data: test.images, dims: [test.count, 1, 28, 28] } });
  return [
    {
      model: 'detector 320×320',
      path: ocrDetectorPath(),
      input: 'x',
      calib: source('x', digitPages({ count: 12, seed: 1, split: 'train' })),
      report: source('x', digitPages({ count: quick ? 4 : 8, seed: 2, split: 'test' })),
    },
    {
      model: 'classifier, digit lines',
      path: ocrClassifierPath(),
      input: 'x',
      calib: source('x', digitLines({ count: 64, seed: 1, split: 'train' })),
      report: source('x', digitLines({ count: quick ? 100 : 300, seed: 2, split: 'test' })),
    },
    { model: 'MNIST CNN', path: mnistPath, input: 'input', calib: mnistTrain, report: mnistTest, labels: test.labels },
  ];
}

export async function ablationTable(mnistPath: string, opts: { quick?: boolean; methods?: CalibrationMethod[]; log?: (s: string) => void } = {}): Promise<AblationRow[]> {
  const rows: AblationRow[] = [];
  const equalizations: Equalization[] = ['none', 'weights', 'activations'];
  const corrections: BiasCorrection[] = ['none', 'empirical'];
  for (const c of cases(mnistPath, opts.quick ?? false)) {
    const fp32 = readModel(c.path);
    for (const method of opts.methods ?? ['mse']) {
      for (const equalization of equalizations) {
        for (const biasCorrection of corrections) {
          const t0 = performance.now();
          const { model } = await calibrate(fp32, c.calib, { method, equalization, biasCorrection });
          const calibrateMs = performance.now() - t0;
          const r = await compareModels(fp32, model, c.report, { labels: c.labels, batchSize: 8 });
          const value = c.labels ? r.accuracyInt8! : r.value;
          const row = { model: c.model, method, equalization, biasCorrection, metric: c.labels ? 'accuracy' : r.metric.name, value, sqnrDb: r.sqnrDb, calibrateMs };
          rows.push(row);
          opts.log?.(`ablation ${c.model} ${method} eq=${equalization} bc=${biasCorrection}: ${row.metric} ${value.toFixed(4)}, ${r.sqnrDb.toFixed(1)} dB, ${(calibrateMs / 1000).toFixed(1)} s`);
        }
      }
    }
  }
  return rows;
}

/** One line per model and method, a column per technique combination. */
export function ablationMarkdown(rows: AblationRow[]): string {
  const cols = [...new Set(rows.map((r) => `${r.equalization}|${r.biasCorrection}`))];
  const head = cols.map((c) => {
    const [eq, bc] = c.split('|');
    return `CLE ${eq}, BC ${bc}`;
  });
  const fmt = (r: AblationRow) => `${r.metric === 'mask-iou:0.3' ? r.value.toFixed(3) : `${(100 * r.value).toFixed(2)}%`} / ${r.sqnrDb.toFixed(1)} dB`;
  const lines = [`| model, method | ${head.join(' | ')} |`, `|---|${cols.map(() => '---').join('|')}|`];
  for (const key of [...new Set(rows.map((r) => `${r.model}|${r.method}`))]) {
    const [model, method] = key.split('|');
    const cells = cols.map((c) => {
      const r = rows.find((x) => x.model === model && x.method === method && `${x.equalization}|${x.biasCorrection}` === c);
      return r ? fmt(r) : '';
    });
    lines.push(`| ${model}, ${method} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

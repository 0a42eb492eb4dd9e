// `npm run bench`: every benchmark in one table, ratios measured side by side in one
// process. `--json` prints machine-readable results; `--quick` runs fewer repetitions;
// `--no-ocr` skips the OCR-classifier section; `--methods` prints the calibration-method
// table instead (accuracy change per method and sample count); `--ablation` prints the
// technique ablation (equalization × bias correction on the OCR models and MNIST);
// `--models` prints calibration memory and time on the real PaddleOCR
// models instead (scripts/bench/models.ts); `--fleet` a fleet calibration of 200 simulated
// members against mosquitto (scripts/bench/fleet.ts), `--fleet-detector` three detector
// daemons in different scenes calibrated together (scripts/bench/fleet-detector.ts); `--daemon-detector` the daemon serving the PaddleOCR
// detector (scripts/bench/daemon-detector.ts), and with `--default-config` the daemon as
// `CALIBD_MODEL=… npm start` runs it; `--no-auto` skips the per-layer selection section.
//
// Sections: INT8 vs FP32 latency (batch 1 and 32, 1 and 2 threads); calibration wall time
// against N × FP32 forward time; peak RSS of `calibd calibrate` at two sample counts; the
// PaddleOCR classifier's INT8/FP32 latency and calibration cost (scripts/bench/ocr.ts);
// FP32 vs full INT8 vs the automatic INT8/FP32 selection (scripts/bench/auto.ts); the
// daemon: sampling cost, p99 during recalibration, swap time (scripts/bench/daemon.ts).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrate, arraySource, RANGE_METHODS, type CalibrationMethod } from '../src/calibration/index.js';
import { writeNpy } from '../src/common/index.js';
import { readModel, serializeModel } from '../src/onnx/index.js';
import { createSession, ort } from '../src/runtime/index.js';
import { ocrBench, ocrClassifierPath } from './bench/ocr.js';
import { autoBench } from './bench/auto.js';
import { interleaved } from './bench/timing.js';
import { daemonBenchmarks } from './bench/daemon.js';
import { mnistMethodTable, ocrMethodTable, methodTableMarkdown } from './bench/methods.js';
import { ablationMarkdown, ablationTable } from './bench/ablation.js';
import { modelsBench } from './bench/models.js';
import { fleetBench } from './bench/fleet.js';
import { fleetDetectorBench } from './bench/fleet-detector.js';
import { daemonDetectorBench } from './bench/daemon-detector.js';
import { loadMnistSplit, IMAGE_SIZE } from './lib/mnist-data.js';
import type { BenchRow } from './bench/row.js';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const json = args.has('--json');
const repoRoot = join(import.meta.dirname, '..');
const modelPath = join(repoRoot, 'models', 'mnist-cnn.onnx');

type Row = BenchRow;
const rows: Row[] = [];
const log = (s: string) => {
  if (!json) process.stderr.write(s + '\n');
};

function batchOf(images: Float32Array, start: number, n: number): ort.Tensor {
  return new ort.Tensor('float32', images.slice(start * IMAGE_SIZE, (start + n) * IMAGE_SIZE), [n, 1, 28, 28]);
}

async function latency(int8: Uint8Array, fp32: Uint8Array, images: Float32Array) {
  for (const threads of [1, 2]) {
    const sFp = await createSession(fp32, { threads });
    const sQ = await createSession(int8, { threads });
    for (const batch of [1, 32]) {
      const x = { input: batchOf(images, 0, batch) };
      const [f, q] = await interleaved(
        [
          { name: 'fp32', run: () => sFp.run(x) },
          { name: 'int8', run: () => sQ.run(x) },
        ],
        { blocks: quick ? 4 : 10, perBlock: batch === 1 ? 30 : 8 },
      );
      const ratio = q.medianMs / f.medianMs;
      rows.push({
        section: 'latency',
        name: `MNIST INT8/FP32 median, batch ${batch}, ${threads} thread${threads > 1 ? 's' : ''}`,
        value: ratio,
        unit: 'ratio',
        target: batch === 1 && threads === 1 ? '<= 0.5' : undefined,
        detail: `int8 ${q.medianMs.toFixed(3)} ms (p99 ${q.p99Ms.toFixed(3)}), fp32 ${f.medianMs.toFixed(3)} ms (p99 ${f.p99Ms.toFixed(3)}), ${q.runs} runs each`,
      });
      log(`latency b${batch} t${threads}: ${ratio.toFixed(3)}`);
    }
    await sFp.release();
    await sQ.release();
  }
}

async function calibrationCost(fp32Bytes: Uint8Array, images: Float32Array) {
  const n = 500;
  const source = arraySource({ input: { data: images.subarray(0, n * IMAGE_SIZE), dims: [n, 1, 28, 28] } });
  // The yardstick: N samples through the FP32 model, at the calibration's batch size.
  const s = await createSession(fp32Bytes, { threads: 1 });
  const reps = quick ? 2 : 4;
  let forwardMs = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i += 32) await s.run({ input: batchOf(images, i, Math.min(32, n - i)) });
    forwardMs = Math.min(forwardMs, performance.now() - t0);
  }
  await s.release();
  const model = readModel(modelPath);
  const methods: CalibrationMethod[] = [...RANGE_METHODS];
  for (const method of methods) {
    let best = Infinity;
    for (let r = 0; r < (quick ? 1 : 2); r++) {
      const t0 = performance.now();
      await calibrate(model, source, { method });
      best = Math.min(best, performance.now() - t0);
    }
    rows.push({
      section: 'calibration',
      name: `calibrate ${method}, N=${n} / N × FP32 forward`,
      value: best / forwardMs,
      unit: 'ratio',
      target: '<= 1.5',
      detail: `calibrate ${best.toFixed(0)} ms, forward ${forwardMs.toFixed(0)} ms`,
    });
    log(`calibration ${method}: ${(best / forwardMs).toFixed(2)}`);
  }
}

function calibrateRss(images: Float32Array) {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-bench-'));
  try {
    const results: number[] = [];
    for (const n of [500, 2000]) {
      const data = join(dir, `n${n}`);
      spawnSync('mkdir', ['-p', data]);
      // One file per 100 samples, as a device would collect them.
      for (let i = 0; i < n; i += 100) writeNpy(join(data, `s${String(i).padStart(5, '0')}.npy`), images.slice(i * IMAGE_SIZE, (i + 100) * IMAGE_SIZE), [100, 1, 28, 28]);
      const child = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'bench', 'rss-child.mjs'), 'calibrate', '--model', modelPath, '--data', data, '--method', 'entropy', '--out', join(dir, `out${n}.onnx`)], { encoding: 'utf8' });
      if (child.status !== 0) throw new Error(`calibd calibrate failed: ${child.stderr}`);
      const rss = Number(/maxRSS=(\d+)/.exec(child.stderr)?.[1]) / 1024;
      results.push(rss);
      rows.push({ section: 'memory', name: `peak RSS of calibd calibrate, N=${n}`, value: rss, unit: 'MB' });
      log(`rss n=${n}: ${rss.toFixed(1)} MB`);
    }
    rows.push({ section: 'memory', name: 'peak RSS N=2000 / N=500', value: results[1] / results[0], unit: 'ratio', target: '~1.0' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function methods() {
  const mnist = await mnistMethodTable(modelPath, { quick, log });
  const ocr = args.has('--no-ocr') ? [] : await ocrMethodTable(ocrClassifierPath(), { quick, log });
  if (json) {
    process.stdout.write(JSON.stringify({ date: new Date().toISOString(), rows: [...mnist, ...ocr] }, null, 2) + '\n');
    return;
  }
  process.stdout.write(`MNIST CNN, accuracy change against FP32 in points (2,000 test digits):\n\n${methodTableMarkdown(mnist)}\n`);
  if (ocr.length) process.stdout.write(`PaddleOCR classifier, top-1 agreement lost against FP32 in points (200 synthetic crops):\n\n${methodTableMarkdown(ocr, 100)}`);
}

async function ablation() {
  const rows = await ablationTable(modelPath, { quick, log, methods: quick ? ['mse'] : ['mse', 'percentile'] });
  if (json) process.stdout.write(JSON.stringify({ date: new Date().toISOString(), rows }, null, 2) + '\n');
  else process.stdout.write(ablationMarkdown(rows));
}

async function main() {
  if (args.has('--methods')) return methods();
  if (args.has('--ablation')) return ablation();
  if (args.has('--models')) return report(await modelsBench(repoRoot, { quick, log }));
  if (args.has('--fleet-detector')) return report(await fleetDetectorBench(repoRoot, { quick, log }));
  if (args.has('--fleet')) return report(await fleetBench(repoRoot, { quick, log, members: Number(process.argv.find((a) => a.startsWith('--members='))?.slice(10) ?? 200) }));
  if (args.has('--daemon-detector')) return report(await daemonDetectorBench(repoRoot, { quick, log, defaultConfig: args.has('--default-config') }));
  const { train, test } = loadMnistSplit();
  const fp32Bytes = serializeModel(readModel(modelPath));
  const calib = await calibrate(readModel(modelPath), arraySource({ input: { data: train.images.subarray(0, 500 * IMAGE_SIZE), dims: [500, 1, 28, 28] } }), { method: 'entropy' });
  const int8Bytes = serializeModel(calib.model);
  await latency(int8Bytes, fp32Bytes, test.images);
  await calibrationCost(fp32Bytes, train.images);
  calibrateRss(train.images);
  if (!args.has('--no-ocr')) rows.push(...(await ocrBench({ quick, log })));
  if (!args.has('--no-auto')) rows.push(...(await autoBench({ log })));
  rows.push(...(await daemonBenchmarks({ quick, log })));
  report(rows);
}

function report(rows: Row[]) {
  if (json) {
    process.stdout.write(JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, rows }, null, 2) + '\n');
    return;
  }
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'benchmark'.padEnd(w)}  ${'value'.padStart(9)}  unit   target   detail`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(w)}  ${r.value.toFixed(r.unit === 'MB' ? 1 : 3).padStart(9)}  ${r.unit.padEnd(5)}  ${(r.target ?? '').padEnd(7)}  ${r.detail ?? ''}`);
  }
}

await main();

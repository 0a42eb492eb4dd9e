// `npm run bench -- --fleet-detector`: fleet calibration on a real model. Three daemons
// serve the PaddleOCR detector (320² pages of real MNIST digits), each its own scene:
// daylight (the pages as drawn), dusk (a quarter of the light) and a noisy, tinted sensor.
// Each calibrates on its own scene first; then `calibd fleet calibrate --all` (the real
// CLI) merges their statistics over mosquitto; then a fourth device starts with
// firstBoot: fleet. Every figure is measured on held-out test pages (the MNIST test
// split, other seeds) against FP32: mask IoU at 0.3 (the detector's metric) and SQNR.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { arraySource, compareModels, parseMetric } from '../../src/calibration/index.js';
import { FleetClient } from '../../src/fleet/index.js';
import { readModel } from '../../src/onnx/index.js';
import { digitPages } from '../lib/digit-pages.js';
import { mulberry32 } from '../lib/mnist-data.js';
import { spawnDaemon, type DaemonProcess } from '../lib/daemon-process.js';
import { ocrDetectorPath } from './ocr.js';
import { infer } from './daemon-detector.js';
import type { BenchRow } from './row.js';

const SIDE = 320;
const PLANE = SIDE * SIDE;
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
/** The detector's input contract: ImageNet normalisation of [0, 1] pixels. */
const INPUT_RANGE = { min: (0 - MEAN[0]) / STD[0], max: (1 - MEAN[2]) / STD[2] };
const METRIC = 'mask-iou:0.3';

const DUSK_LIGHT = Number(process.env.CALIBD_BENCH_DUSK ?? 0.25);

type Scene = (pixel: number, channel: number, rand: () => number) => number;
const SCENES: Record<string, Scene> = {
  daylight: (p) => p,
  // A quarter of the light by default; CALIBD_BENCH_DUSK sets another share (e.g. 0.5).
  dusk: (p) => p * DUSK_LIGHT,
  noisy: (p, c, rand) => Math.min(1, Math.max(0, p * 0.8 + [0.15, 0.1, 0.0][c] + (rand() - 0.5) * 0.3)),
};

/** Pages re-lit into a scene: back to pixels, changed, normalised again. */
export function scenePages(count: number, seed: number, split: 'train' | 'test', scene: string): { data: Float32Array; dims: number[] } {
  const pages = digitPages({ count, seed, split, size: SIDE });
  const rand = mulberry32(seed * 7 + 1);
  const f = SCENES[scene];
  const out = new Float32Array(pages.data.length);
  for (let n = 0; n < count; n++) {
    for (let c = 0; c < 3; c++) {
      const at = (n * 3 + c) * PLANE;
      for (let i = 0; i < PLANE; i++) out[at + i] = (f(pages.data[at + i] * STD[c] + MEAN[c], c, rand) - MEAN[c]) / STD[c];
    }
  }
  return { data: out, dims: pages.dims };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function mosquitto(dir: string): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const bin = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  const proc = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  return { url: `mqtt://127.0.0.1:${port}`, stop: () => proc.kill() };
}

function modelFiles(stateDir: string): string[] {
  const folder = join(stateDir, 'models');
  return readdirSync(folder).map((f) => join(folder, f)).sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
}

export async function score(modelPath: string, pages: { data: Float32Array; dims: number[] }): Promise<{ iou: number; sqnrDb: number }> {
  const r = await compareModels(readModel(ocrDetectorPath()), readModel(modelPath), arraySource({ x: pages }), { metric: parseMetric(METRIC), batchSize: 2 });
  return { iou: r.value, sqnrDb: r.sqnrDb };
}

export async function fleetDetectorBench(repoRoot: string, opts: { quick: boolean; log: (s: string) => void }): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-fleet-det-'));
  const broker = await mosquitto(dir);
  // Pages each device serves (CALIBD_BENCH_PAGES); a fifth or so are held out for its gate.
  const fed = Number(process.env.CALIBD_BENCH_PAGES ?? (opts.quick ? 24 : 40));
  const scored = opts.quick ? 6 : 10;
  const daemons = new Map<string, { d: DaemonProcess; stateDir: string }>();
  const start = async (id: string, extra: Record<string, unknown> = {}) => {
    const stateDir = join(dir, id);
    const config = {
      model: ocrDetectorPath(),
      deviceId: id,
      stateDir,
      http: { port: 0 },
      sampling: { oneIn: 1 },
      recalibration: { everyInferences: 0, minSamples: 1000, validationSlice: 200, driftThreshold: 50 },
      validation: { metric: METRIC },
      inputRange: INPUT_RANGE,
      inputShapes: { x: [1, 3, SIDE, SIDE] },
      mqtt: { url: broker.url, metricsIntervalSec: 3600 },
      log: { level: 'info' }, // spawnDaemon waits for the 'calibd ready' line
      ...extra,
    };
    writeFileSync(join(dir, `${id}.yaml`), stringify(config));
    const d = await spawnDaemon(repoRoot, join(dir, `${id}.yaml`), { readyTimeoutMs: 120_000, maxLogLines: 500 });
    daemons.set(id, { d, stateDir });
    return d;
  };
  const rows: BenchRow[] = [];
  try {
    const ids = Object.keys(SCENES);
    for (const id of ids) await start(id);
    const op = await FleetClient.connect({ url: broker.url });
    const own = new Map<string, string>();
    try {
      for (const [k, id] of ids.entries()) {
        opts.log(`fleet detector: ${id}: serving ${fed} pages, then calibrating on them`);
        const pages = scenePages(fed, 300 + k, 'train', id);
        for (let i = 0; i < fed; i++) {
          if ((await infer(daemons.get(id)!.d, pages.data.subarray(i * 3 * PLANE, (i + 1) * 3 * PLANE))) !== 200) throw new Error(`${id}: a page was refused`);
        }
        await new Promise((r) => setTimeout(r, 3000)); // the last samples through the worker
        const [r] = await op.request(id, 'recalibrate', {}, { timeoutMs: 600_000 });
        if (r?.status !== 'ok') throw new Error(`${id}: ${r?.error}`);
        opts.log(`fleet detector: ${id}: own calibration ${JSON.stringify(r.data)}`);
        own.set(id, modelFiles(daemons.get(id)!.stateDir).at(-1)!);
      }
    } finally {
      await op.close();
    }
    const calibd = (args: string[]) => {
      const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), ...args], { encoding: 'utf8', env: { ...process.env, CALIBD_MQTT_URL: '' } });
      if (r.status !== 0) throw new Error(`calibd ${args[0]} ${args[1]}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    // The same statistics, saved: a rejected candidate leaves no model file on a device, so
    // the fleet calibration is also built offline from them (calibrate --stats: same ranges).
    const stats = join(dir, 'stats.json');
    calibd(['fleet', 'stats', '--all', '--broker', broker.url, '--out', stats]);
    opts.log(`fleet detector: statistics saved in ${stats}; calibd fleet calibrate --all`);
    const cli = { stdout: calibd(['fleet', 'calibrate', '--all', '--broker', broker.url, '--json', '--timeout', '600000']) };
    const fleetModel = join(dir, 'fleet.int8.onnx');
    calibd(['calibrate', '--model', ocrDetectorPath(), '--stats', stats, '--out', fleetModel]);
    const out = JSON.parse(cli.stdout) as { calibration: { statsBytes: number }; devices: Array<{ device: string; state: string; reason?: string }> };
    for (const row of out.devices) opts.log(`fleet detector: ${row.device}: ${row.state}: ${row.reason}`);
    const tests = new Map(ids.map((id, k) => [id, scenePages(scored, 900 + k, 'test', id)]));
    for (const id of ids) {
      const [o, f] = [await score(own.get(id)!, tests.get(id)!), await score(fleetModel, tests.get(id)!)];
      const state = out.devices.find((d) => d.device === id)?.state;
      rows.push({ section: 'fleet-detector', name: `${id}: mask IoU, own → fleet (${state})`, value: f.iou, unit: 'IoU', detail: `own ${o.iou.toFixed(4)} / SQNR ${o.sqnrDb.toFixed(1)} dB; fleet ${f.iou.toFixed(4)} / ${f.sqnrDb.toFixed(1)} dB` });
    }
    opts.log('fleet detector: a fresh device with firstBoot: fleet');
    await start('newcomer', { firstBoot: 'fleet' });
    const newcomer = modelFiles(daemons.get('newcomer')!.stateDir)[0];
    const dataFree = modelFiles(daemons.get('daylight')!.stateDir)[0];
    const union = { data: new Float32Array(scored * 3 * 3 * PLANE), dims: [scored * 3, 3, SIDE, SIDE] };
    ids.forEach((id, k) => union.data.set(tests.get(id)!.data, k * scored * 3 * PLANE));
    const [nf, df] = [await score(newcomer, union), await score(dataFree, union)];
    rows.push(
      { section: 'fleet-detector', name: 'newcomer (firstBoot: fleet), union of scenes: mask IoU', value: nf.iou, unit: 'IoU', detail: `SQNR ${nf.sqnrDb.toFixed(1)} dB` },
      { section: 'fleet-detector', name: 'data-free first boot, union of scenes: mask IoU', value: df.iou, unit: 'IoU', detail: `SQNR ${df.sqnrDb.toFixed(1)} dB` },
      { section: 'fleet-detector', name: 'statistics over MQTT, 3 devices', value: out.calibration.statsBytes / 1024, unit: 'KiB' },
    );
  } finally {
    for (const { d } of daemons.values()) await d.stop().catch(() => undefined);
    broker.stop();
  }
  return rows;
}

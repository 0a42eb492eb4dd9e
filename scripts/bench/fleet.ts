// `npm run bench -- --fleet`: what a fleet calibration of 200 devices costs. 200 simulated
// members run in this process against a real mosquitto, each a real FleetMember (its own
// MQTT connection, the real command table and response parts) over a light agent: it
// answers `stats` with real statistics, measured by the real Calibrator on one of a few
// seeded data sets, and `apply` by checking the calibration as a daemon does (model,
// graph, ranges) without building a model. The operator is the real
// `calibd fleet calibrate --all` in a child process, timed, with its peak RSS; a subscriber
// on `#` counts every payload byte on the wire while it runs.
//
// Two models: the bundled MNIST CNN (4 measured tensors) and the PaddleOCR detector at 320²
// (the size of statistics a real model has).

import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Calibrator, arraySource, parseFleetCalibration, type StatisticsBundle } from '../../src/calibration/index.js';
import { parseConfig } from '../../src/config/index.js';
import { FleetMember } from '../../src/fleet/index.js';
import { checkFleetCalibration } from '../../src/agent/fleet-calibration.js';
import { readModel } from '../../src/onnx/index.js';
import { drift } from '../lib/drift.js';
import { digitPages } from '../lib/digit-pages.js';
import { loadMnistSplit, IMAGE_SIZE } from '../lib/mnist-data.js';
import { ocrDetectorPath } from './ocr.js';
import type { BenchRow } from './row.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };

interface FleetModel {
  name: string;
  path: string;
  /** A few statistics bundles, each from its own seeded data (the members take turns). */
  bundles(): Promise<StatisticsBundle[]>;
}

async function bundlesOf(path: string, sets: Array<{ data: Float32Array; dims: number[] }>, inputName: string): Promise<StatisticsBundle[]> {
  const out: StatisticsBundle[] = [];
  for (const set of sets) {
    const c = await Calibrator.create(readModel(path), { method: 'mse' });
    try {
      // Sample by sample with the daemon's default fading (recalibration.forgetting 0.98), so
      // the counts are the full-precision weights a daemon sends, not integers.
      for await (const batch of arraySource({ [inputName]: set }).batches(1)) {
        c.decay(0.98);
        await c.observe(batch);
      }
      out.push(c.statisticsBundle(['template']));
    } finally {
      await c.release();
    }
  }
  return out;
}

function models(repoRoot: string, quick: boolean): FleetModel[] {
  const mnist = join(repoRoot, 'models', 'mnist-cnn.onnx');
  return [
    {
      name: 'MNIST CNN',
      path: mnist,
      bundles: () => {
        const { train } = loadMnistSplit();
        const sets = [0, 0.5, 1].map((severity, k) => ({ data: drift(train.images.subarray(k * 200 * IMAGE_SIZE, (k + 1) * 200 * IMAGE_SIZE), { severity, seed: k + 1 }), dims: [200, 1, 28, 28] }));
        return bundlesOf(mnist, sets, 'input');
      },
    },
    {
      name: 'PaddleOCR detector 320²',
      path: ocrDetectorPath(),
      // 40 pages a bundle, faded: as full as a daemon's after as many samples.
      bundles: () => bundlesOf(ocrDetectorPath(), (quick ? [1] : [1, 2]).map((seed) => digitPages({ count: 40, seed, split: 'train', size: 320 })), 'x'),
    },
  ];
}

/** The part of a daemon a member talks to, answering from a fixed statistics bundle. */
class SimulatedAgent extends EventEmitter {
  version = 1;
  readonly buffer = { stats: () => ({ rows: 0 }), clear: () => undefined, count: () => 0 };
  readonly drift = { score: () => 0 };
  readonly engine = { stats: () => ({ inferences: 0, errors: 0 }) };
  applied = 0;

  constructor(
    readonly config: ReturnType<typeof parseConfig>,
    private readonly bundle: StatisticsBundle,
  ) {
    super();
  }
  status() {
    return { model: { name: 'sim', sha256: this.bundle.sourceModelSha256 }, serving: 'int8', calibration: { version: this.version, method: 'mse', createdAt: null } };
  }
  calibrations() {
    return [];
  }
  counts() {
    return { inferences: 0 };
  }
  async statistics() {
    return { ...this.bundle, devices: [this.config.deviceId] };
  }
  async applyFleet(req: { calibration: Record<string, unknown> }) {
    const { calibration, ranges } = parseFleetCalibration(req.calibration);
    checkFleetCalibration(calibration, this.bundle.sourceModelSha256, this.bundle.graph);
    if (ranges.size !== this.bundle.tensors.length) throw new Error(`ranges for ${ranges.size} of ${this.bundle.tensors.length} tensors`);
    this.applied++;
    return { version: ++this.version, state: 'accepted' as const, figures: {} };
  }
  async recalibrate(): Promise<never> {
    throw new Error('simulated member');
  }
  async rollback(): Promise<never> {
    throw new Error('simulated member');
  }
  applyConfig(): never {
    throw new Error('simulated member');
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function startMosquitto(): Promise<{ url: string; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-bench-fleet-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'max_connections -1', 'log_type error', ''].join('\n'));
  const bin = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (!bin) throw new Error('mosquitto is not installed (apt-get install -y mosquitto)');
  const proc = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  const url = `mqtt://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 });
      await c.endAsync();
      return { url, stop: () => proc.kill() };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  proc.kill();
  throw new Error('mosquitto did not start');
}

/** The operator's run, in a child process: its output, wall time and peak RSS. */
function operatorRun(repoRoot: string, url: string, base: string): Promise<{ out: any; ms: number; rssMB: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(repoRoot, 'scripts', 'bench', 'rss-child.mjs'), 'fleet', 'calibrate', '--all', '--broker', url, '--base', base, '--json', '--timeout', '300000', '--no-publish'], { env: { ...process.env, CALIBD_MQTT_URL: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => {
      const ms = Date.now() - t0;
      const rss = /maxRSS=(\d+)/.exec(stderr);
      if (code !== 0 || !rss) return reject(new Error(`fleet calibrate exited ${code}: ${stderr.slice(0, 500)}`));
      resolve({ out: JSON.parse(stdout), ms, rssMB: Number(rss[1]) / 1024 });
    });
  });
}

export async function fleetBench(repoRoot: string, opts: { quick: boolean; log: (s: string) => void; members?: number }): Promise<BenchRow[]> {
  const count = opts.members ?? 200;
  const rows: BenchRow[] = [];
  const broker = await startMosquitto();
  try {
    for (const model of models(repoRoot, opts.quick)) {
      opts.log(`fleet: ${model.name}: measuring real statistics…`);
      const bundles = await model.bundles();
      const members: FleetMember[] = [];
      const agents: SimulatedAgent[] = [];
      const base = `bench${rows.length}`;
      for (let i = 0; i < count; i++) {
        const config = parseConfig({ model: model.path, deviceId: `sim-${String(i).padStart(3, '0')}`, mqtt: { url: broker.url, baseTopic: base, metricsIntervalSec: 3600, keepalive: 60 } });
        const agent = new SimulatedAgent(config, bundles[i % bundles.length]);
        agents.push(agent);
        members.push(await FleetMember.start(agent as never, silent));
      }
      const spy = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      let wire = 0;
      let messages = 0;
      spy.on('message', (_t, p) => {
        wire += p.length;
        messages++;
      });
      await spy.subscribeAsync(`${base}/#`, { qos: 0 });
      await new Promise((r) => setTimeout(r, 1500)); // every member connected and retained
      wire = 0;
      messages = 0;
      opts.log(`fleet: ${model.name}: calibd fleet calibrate --all over ${count} members…`);
      const run = await operatorRun(repoRoot, broker.url, base);
      await new Promise((r) => setTimeout(r, 300));
      await spy.endAsync();
      const accepted = run.out.devices.filter((d: { state: string }) => d.state === 'accepted').length;
      const perMember = run.out.calibration.statsBytes / count;
      const detail = `${accepted}/${count} accepted, ${run.out.calibration.tensors} tensors, ${messages} messages`;
      rows.push(
        { section: 'fleet', name: `fleet calibrate, ${count} members, ${model.name}: wall time`, value: run.ms / 1000, unit: 's', detail },
        { section: 'fleet', name: `fleet calibrate, ${count} members, ${model.name}: bytes on the wire`, value: wire / 2 ** 20, unit: 'MB', detail: `statistics ${(perMember / 1024).toFixed(1)} KiB a member (compressed)` },
        { section: 'fleet', name: `fleet calibrate, ${count} members, ${model.name}: operator peak RSS`, value: run.rssMB, unit: 'MB' },
      );
      if (accepted !== count || agents.some((a) => a.applied !== 1)) throw new Error(`${model.name}: ${accepted} of ${count} members accepted`);
      for (const m of members) await m.stop();
    }
  } finally {
    broker.stop();
  }
  return rows;
}

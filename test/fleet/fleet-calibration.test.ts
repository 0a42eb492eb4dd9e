// Fleet calibration end to end: three real daemons on a real mosquitto, each fed its own
// scene (dusk, daylight, a noisy background), calibrate on their own first; then
// `calibd fleet calibrate --all` (the real CLI) merges their statistics and each device
// gates the result on its own held-out samples. A fourth, fresh device with firstBoot: fleet
// starts from the retained result. A subscriber on `#` records every payload of the whole
// run, and none may hold 32 bytes in a row of any input a device stored.
//
// Scenes are MNIST digits drifted with scripts/lib/drift.ts: the devices are fed training
// digits, and every accuracy here is measured on test digits (the seeded split of
// scripts/lib/mnist-data.ts), so nothing is scored on what it was calibrated with.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { inflateSync } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import * as ort from 'onnxruntime-node';
import { FleetClient } from '../../src/fleet/index.js';
import { SampleBuffer, openStateDb } from '../../src/state/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { drift, type DriftSpec } from '../../scripts/lib/drift.js';
import { inferDigits, mqttConfig, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { mosquittoSkipReason, startBroker, type TestBroker } from '../helpers/mosquitto.js';
import { paths, repoRoot } from '../helpers/paths.js';
import { readModel } from '../../src/onnx/index.js';
import { readProfile } from '../../src/quant/index.js';

const SCENES: Record<string, DriftSpec> = {
  dusk: { severity: 1, gain: 0.5, background: 0, noise: 0 },
  daylight: { severity: 0 },
  noisy: { severity: 1, gain: 3, background: 0.2, noise: 0.08 },
};
const DEVICES = Object.keys(SCENES);
/** Live digits each device serves (and samples, one in one). */
const FED = 300;
/** Test digits per scene the calibrations are scored on. */
const SCORED = 600;
const USERS = { operator: 'op-secret', dusk: 'dusk-secret', daylight: 'day-secret', noisy: 'noisy-secret', newcomer: 'new-secret' };

const skipReason = mosquittoSkipReason();
let broker: TestBroker;
let dir: string;
const daemons = new Map<string, Daemon>();
let spy: MqttClient;
const payloads: Array<{ topic: string; payload: Buffer }> = [];
const stopped = new Set<Daemon>();

function deviceConfig(id: string, extra: Record<string, unknown> = {}) {
  const passwordFile = join(dir, `${id}.pw`);
  writeFileSync(passwordFile, `${USERS[id as keyof typeof USERS]}\n`);
  return {
    deviceId: id,
    sampling: { oneIn: 1, maxRows: 3000 },
    // No automatic trigger: each device calibrates when told, so the steps are clear.
    recalibration: { everyInferences: 0, method: 'mse', minSamples: 3000, validationSlice: 100, driftThreshold: 50, forgetting: 0.98 },
    log: { level: 'info' },
    mqtt: mqttConfig(broker.url, broker.secure ? { user: id, passwordFile } : {}),
    ...extra,
  };
}

async function startDevice(id: string, extra: Record<string, unknown> = {}): Promise<Daemon> {
  const stateDir = mkdtempSync(join(dir, `${id}-`));
  const d = await startDaemon({ stateDir, config: { ...deviceConfig(id, extra), stateDir } });
  daemons.set(id, d);
  return d;
}

/** `count` digits of `set` from `from`, drifted into `scene` (seeded per scene and purpose). */
function sceneImages(images: Float32Array, from: number, count: number, scene: string, seed: number): Float32Array {
  return drift(images.subarray(from * IMAGE_SIZE, (from + count) * IMAGE_SIZE), { ...SCENES[scene], seed });
}

/** Top-1 predictions of a model file on drifted test digits. */
async function predictions(modelPath: string, images: Float32Array, n: number): Promise<Uint8Array> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', images, [n, 1, 28, 28]) });
    const logits = out[session.outputNames[0]].data as Float32Array;
    const best = new Uint8Array(n);
    for (let i = 0; i < n; i++) for (let k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + best[i]]) best[i] = k;
    return best;
  } finally {
    await session.release();
  }
}

/** Top-1 accuracy (%) of a model file on drifted test digits. */
async function accuracy(modelPath: string, images: Float32Array, labels: Uint8Array): Promise<number> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const n = labels.length;
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', images, [n, 1, 28, 28]) });
    const logits = out[session.outputNames[0]].data as Float32Array;
    let right = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
      if (best === labels[i]) right++;
    }
    return (100 * right) / n;
  } finally {
    await session.release();
  }
}

/** The model file a device wrote last (its state folder's models/). */
function newestModel(d: Daemon): string {
  const folder = join(d.stateDir, 'models');
  const files = readdirSync(folder).filter((f) => f.endsWith('.onnx')).map((f) => join(folder, f));
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), ...args], { env: { ...process.env, CALIBD_MQTT_URL: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const { train, test } = loadMnistSplit();
const scored = new Map(DEVICES.map((s, k) => [s, sceneImages(test.images, k * SCORED, SCORED, s, 1000 + k)]));
const scoredLabels = new Map(DEVICES.map((s, k) => [s, test.labels.subarray(k * SCORED, (k + 1) * SCORED)]));
const own = new Map<string, string>();
const figures: Record<string, Record<string, number>> = {};

beforeAll(async () => {
  if (skipReason) return;
  dir = mkdtempSync(join(tmpdir(), 'calibd-fleet-calibration-'));
  broker = await startBroker({ users: USERS });
  spy = await mqtt.connectAsync(broker.url, { username: 'operator', password: USERS.operator, protocolVersion: 5, reconnectPeriod: 0 });
  spy.on('message', (topic, p) => payloads.push({ topic, payload: Buffer.from(p) }));
  await spy.subscribeAsync('#', { qos: 1 });
  // firstBoot: fleet before any fleet calibration exists: each falls back to data-free.
  await Promise.all(DEVICES.map((id) => startDevice(id, { firstBoot: 'fleet' })));
  for (const id of DEVICES) expect((await daemons.get(id)!.status()).calibration).toMatchObject({ version: 1, method: 'datafree' });
  // Each device serves its own scene, one request a digit, then calibrates on it alone.
  await Promise.all(
    DEVICES.map(async (id, k) => {
      const d = daemons.get(id)!;
      const images = sceneImages(train.images, k * FED, FED, id, 100 + k);
      for (let i = 0; i < FED; i++) await inferDigits(d, images.subarray(i * IMAGE_SIZE), 1);
      await waitFor(`${id}: samples stored`, async () => (await d.status()).buffer.rows >= FED * 0.95, 30_000);
    }),
  );
  const op = await FleetClient.connect({ url: broker.url, username: 'operator', password: USERS.operator });
  try {
    for (const id of DEVICES) {
      const [r] = await op.request(id, 'recalibrate', {}, { timeoutMs: 60_000 });
      expect(r?.status, `${id} own calibration: ${r?.error}`).toBe('ok');
      expect((r.data as { state: string }).state).toBe('accepted');
      own.set(id, newestModel(daemons.get(id)!));
    }
  } finally {
    await op.close();
  }
}, 180_000);

afterAll(async () => {
  await spy?.endAsync().catch(() => undefined);
  for (const d of daemons.values()) if (!stopped.has(d)) await d.stop();
  await broker?.stop();
  if (Object.keys(figures).length) console.log(`[fleet calibration] ${JSON.stringify(figures)}`);
});

describe.skipIf(skipReason !== null)('fleet calibration from merged statistics', () => {
  let fleetModel: Map<string, string>;

  it('every device accepts the fleet calibration, within 0.5 points of its own on its scene', async () => {
    const pw = join(dir, 'operator.pw');
    writeFileSync(pw, `${USERS.operator}\n`);
    const r = await runCli(['fleet', 'calibrate', '--all', '--broker', broker.url, '--username', 'operator', '--password-file', pw, '--json', '--timeout', '60000']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { calibration: { devices: number; sampleCount: number; tensors: number; statsBytes: number }; devices: Array<{ device: string; state: string; version: number }> };
    expect(out.calibration.devices).toBe(3);
    expect(out.devices.map((d) => [d.device, d.state])).toEqual(DEVICES.slice().sort().map((d) => [d, 'accepted']));
    fleetModel = new Map(DEVICES.map((id) => [id, newestModel(daemons.get(id)!)]));
    for (const id of DEVICES) {
      expect(fleetModel.get(id)).not.toBe(own.get(id));
      const ownAcc = await accuracy(own.get(id)!, scored.get(id)!, scoredLabels.get(id)!);
      const fleetAcc = await accuracy(fleetModel.get(id)!, scored.get(id)!, scoredLabels.get(id)!);
      figures[id] = { own: ownAcc, fleet: fleetAcc, fp32: await accuracy(paths.mnistModel, scored.get(id)!, scoredLabels.get(id)!) };
      expect(fleetAcc, `${id}: fleet ${fleetAcc}% against own ${ownAcc}%`).toBeGreaterThanOrEqual(ownAcc - 0.5);
    }
    // The status each device publishes names the fleet calibration.
    const s = await daemons.get('dusk')!.status();
    expect(s.calibration).toMatchObject({ version: out.devices.find((d) => d.device === 'dusk')!.version, fleet: { devices: 3, sampleCount: out.calibration.sampleCount } });
  }, 180_000);

  it('fleet stats saves the statistics, and calibrate --stats rebuilds the same ranges offline', async () => {
    const pw = join(dir, 'operator.pw');
    const file = join(dir, 'fleet-stats.json');
    const r = await runCli(['fleet', 'stats', '--all', '--broker', broker.url, '--username', 'operator', '--password-file', pw, '--out', file]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/wrote .*fleet-stats.json: 4 tensors, \d+ samples from 3 devices/);
    const out = join(dir, 'offline.onnx');
    const c = await runCli(['calibrate', '--model', paths.mnistModel, '--stats', file, '--out', out]);
    expect(c.code, c.stderr + c.stdout).toBe(0);
    expect(c.stdout).toMatch(/from the statistics of 3 devices/);
    const offline = readProfile(readModel(out))!;
    const onDevice = readProfile(readModel(fleetModel.get('dusk')!))!;
    expect(offline.fleet).toMatchObject({ devices: 3 });
    for (const [t, cal] of Object.entries(onDevice.tensors)) expect([t, offline.tensors[t].min, offline.tensors[t].max]).toEqual([t, cal.min, cal.max]);
    // Statistics of another model are refused with the code that says so.
    const wrong = await runCli(['calibrate', '--model', paths.ocrClassifier, '--stats', file, '--out', join(dir, 'x.onnx')]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/statistics are of model sha256 .* not of/);
  }, 120_000);

  it('a fresh device with firstBoot: fleet serves the fleet calibration from its first request, and beats data-free on the union of scenes', async () => {
    const d = await startDevice('newcomer', { firstBoot: 'fleet' });
    const s = await d.status();
    expect(s.calibration).toMatchObject({ version: 1, method: 'mse', fleet: { devices: 3 } });
    expect(s.serving).toBe('int8');
    const union = { images: new Float32Array(SCORED * 3 * IMAGE_SIZE), labels: new Uint8Array(SCORED * 3) };
    DEVICES.forEach((id, k) => {
      union.images.set(scored.get(id)!, k * SCORED * IMAGE_SIZE);
      union.labels.set(scoredLabels.get(id)!, k * SCORED);
    });
    const newcomer = newestModel(d);
    // The data-free model every device booted with: version 1 of a device that never had fleet.
    const dataFree = readdirSync(join(daemons.get('dusk')!.stateDir, 'models')).map((f) => join(daemons.get('dusk')!.stateDir, 'models', f)).sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)[0];
    const fleetAcc = await accuracy(newcomer, union.images, union.labels);
    const freeAcc = await accuracy(dataFree, union.images, union.labels);
    // Agreement with FP32 too: accuracy moves by whole digits, agreement shows the finer gap.
    const fp32 = await predictions(paths.mnistModel, union.images, union.labels.length);
    figures.newcomer = {
      fleet: fleetAcc,
      datafree: freeAcc,
      fp32: await accuracy(paths.mnistModel, union.images, union.labels),
      fleetAgreement: await accuracy(newcomer, union.images, fp32),
      datafreeAgreement: await accuracy(dataFree, union.images, fp32),
    };
    expect(fleetAcc).toBeGreaterThan(freeAcc);
    expect(figures.newcomer.fleetAgreement).toBeGreaterThan(figures.newcomer.datafreeAgreement);
  }, 120_000);

  it('no payload on any topic holds 32 bytes in a row of any stored input', async () => {
    await new Promise((r) => setTimeout(r, 500)); // the last messages in flight
    for (const d of daemons.values()) {
      await d.stop();
      stopped.add(d);
    }
    const windows = new Set<string>();
    let samples = 0;
    for (const d of daemons.values()) {
      const state = openStateDb(d.stateDir);
      const buffer = new SampleBuffer(state);
      try {
        for (const s of buffer.iterate()) {
          for (const t of Object.values(s.inputs)) {
            const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
            for (let i = 0; i + 32 <= bytes.length; i += 4) windows.add(bytes.toString('latin1', i, i + 32));
          }
          samples++;
        }
      } finally {
        buffer.close();
        state.close();
      }
    }
    expect(samples).toBeGreaterThanOrEqual(FED * 3 * 0.9);
    // Compressed answers are checked inflated too: a window must not hide behind zlib.
    const texts = [...payloads.map((m) => m.payload), ...inflatedAnswers()];
    let checked = 0;
    for (const p of texts) {
      // Every alignment: a window may start at any byte of a payload.
      for (let i = 0; i + 32 <= p.length; i++) {
        if (windows.has(p.toString('latin1', i, i + 32))) throw new Error(`a payload holds 32 bytes of a stored input at offset ${i}`);
      }
      checked += p.length;
    }
    expect(payloads.length).toBeGreaterThan(20);
    expect(checked).toBeGreaterThan(10_000);
  }, 120_000);
});

/** Every compressed answer (fleet/payload.ts) put together and inflated, per topic. */
function inflatedAnswers(): Buffer[] {
  const pending = new Map<string, string[]>();
  const out: Buffer[] = [];
  for (const { topic, payload } of payloads) {
    let m: { encoding?: string; part?: number; parts?: number; data?: string };
    try {
      m = JSON.parse(payload.toString('utf8'));
    } catch {
      continue;
    }
    if (m.encoding !== 'deflate-base64' || typeof m.data !== 'string') continue;
    const parts = m.part === 0 ? [] : (pending.get(topic) ?? []);
    parts.push(m.data);
    pending.set(topic, parts);
    if (m.part === (m.parts ?? 0) - 1) out.push(inflateSync(Buffer.from(parts.join(''), 'base64')));
  }
  expect(out.length).toBeGreaterThanOrEqual(3); // the three devices' statistics
  return out;
}

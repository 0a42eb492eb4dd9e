// End to end on the real daemon: digits seen at dusk (dim), then a bright scene with a
// lighter background and sensor noise. The daemon must calibrate from live data, notice the
// drift, recalibrate by itself and win back FP32-level accuracy, while the calibration it
// made at dusk (kept for comparison) loses clearly more on the bright scene.
import { describe, expect, it, afterAll } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { drift } from '../../scripts/lib/drift.js';
import { paths } from '../helpers/paths.js';
import { inferDigits, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';

const DUSK = { severity: 1, gain: 0.5, background: 0, noise: 0 };
const BRIGHT = { severity: 1, gain: 3, background: 0.1, noise: 0.05 };

async function accuracyOf(modelPath: string, images: Float32Array, labels: Uint8Array, n: number): Promise<number> {
  const s = await ort.InferenceSession.create(modelPath);
  const out = (await s.run({ input: new ort.Tensor('float32', images.subarray(0, n * IMAGE_SIZE), [n, 1, 28, 28]) })).logits.data as Float32Array;
  await s.release();
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from(out.subarray(i * 10, i * 10 + 10));
    if (row.indexOf(Math.max(...row)) === labels[i]) ok++;
  }
  return ok / n;
}

async function stream(d: Daemon, images: Float32Array, n: number, batch = 1) {
  for (let i = 0; i < n; i += batch) await inferDigits(d, images.subarray(i * IMAGE_SIZE), Math.min(batch, n - i));
}

let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

describe('online recalibration under drift (real daemon, real digits)', () => {
  it('recalibrates on its own and recovers FP32 accuracy; the dusk calibration does not', async () => {
    const { train, test } = loadMnistSplit();
    daemon = await startDaemon();
    const d = daemon;
    expect((await d.status()).calibration.method).toBe('datafree');

    // Dusk: the first live calibration replaces the data-free bootstrap.
    const dusk = drift(train.images.subarray(0, 400 * IMAGE_SIZE), { ...DUSK, seed: 1 });
    await stream(d, dusk, 400);
    const first = await waitFor('first live calibration', async () => {
      const s = await d.status();
      return s.calibration.version > 1 && !s.calibration.running && s.calibration.method !== 'datafree' ? s : undefined;
    });
    const duskVersion: number = first.calibration.version;

    // Bright scene: drift is detected and a new calibration accepted.
    const bright = drift(train.images.subarray(1000 * IMAGE_SIZE, 2200 * IMAGE_SIZE), { ...BRIGHT, seed: 2 });
    await stream(d, bright, 1200);
    const after = await waitFor('drift recalibration', async () => {
      const s = await d.status();
      return s.calibration.version > duskVersion && !s.calibration.running ? s : undefined;
    });
    expect(after.counters.accepted).toBeGreaterThanOrEqual(2);
    const history = ((await (await fetch(d.url('/v2/calibd/calibrations'))).json()) as { calibrations: any[] }).calibrations;
    expect(history.some((h) => h.figures?.trigger === 'drift')).toBe(true);

    // Held-out bright digits: daemon (over HTTP) vs FP32 vs the dusk calibration.
    const n = 1000;
    const evalImages = drift(test.images.subarray(0, n * IMAGE_SIZE), { ...BRIGHT, seed: 3 });
    const preds: number[] = [];
    for (let i = 0; i < n; i += 50) preds.push(...(await inferDigits(d, evalImages.subarray(i * IMAGE_SIZE), 50)));
    const online = preds.filter((p, i) => p === test.labels[i]).length / n;
    const fp32 = await accuracyOf(paths.mnistModel, evalImages, test.labels, n);
    const db = new Database(join(d.stateDir, 'calibd.db'), { readonly: true });
    const row = db.prepare('SELECT model_path FROM profiles WHERE version = ?').get(duskVersion) as { model_path: string };
    db.close();
    const stale = await accuracyOf(row.model_path, evalImages, test.labels, n);
    console.log(`bright scene: FP32 ${(100 * fp32).toFixed(1)}%, calibd online INT8 ${(100 * online).toFixed(1)}%, dusk calibration kept static ${(100 * stale).toFixed(1)}%; versions ${JSON.stringify(history.map((h) => [h.version, h.state, h.method, h.figures?.trigger]))}`);
    expect(online).toBeGreaterThanOrEqual(fp32 - 0.01);
    expect(stale).toBeLessThan(online - 0.03);
  }, 240_000);
});

// kill -9 at the worst moments, on the real daemon and its real SQLite file: during a full
// recalibration, during hot swaps, and while samples are being written. After each kill
// the daemon restarts on the same state folder and must serve the calibration it last
// activated (or a newer one it had finished activating), lose no profile, no flushed
// sample, and find its database intact.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { calibrations, inferOne, post, sendDigits, sleep, tenLogits, withDb } from '../helpers/serve.js';

const { train } = loadMnistSplit();
let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

async function restart(prev: Daemon): Promise<Daemon> {
  daemon = await startDaemon({ stateDir: prev.stateDir, configPath: prev.configPath });
  return daemon;
}

/** Profiles that must never disappear: every version that was accepted or active. */
function keptVersions(list: any[]): Map<number, string> {
  return new Map(list.filter((c) => c.state !== 'rejected').map((c) => [c.version, c.state]));
}

/** What a restarted daemon must show whatever the kill interrupted. */
async function checkRecovered(d: Daemon, before: { active: number; rows: number; kept: Map<number, string> }, oneOf?: number[]) {
  const r = await inferOne(d, train.images, 7);
  expect(tenLogits(r), JSON.stringify(r.body)).toBe(true);
  const s = await d.status();
  const list = await calibrations(d);
  const byVersion = new Map(list.map((c) => [c.version, c]));
  for (const v of before.kept.keys()) expect(['active', 'accepted', 'rolled_back'], `v${v} after restart`).toContain(byVersion.get(v)?.state);
  const v: number = s.calibration.version;
  if (oneOf) expect(oneOf).toContain(v);
  else if (v !== before.active) {
    // Only a calibration the killed daemon had already made active may take over.
    expect(v).toBeGreaterThan(before.active);
    expect(byVersion.get(v)?.state).toBe('active');
  }
  expect(s.serving).toBe('int8');
  expect(s.buffer.rows).toBeGreaterThanOrEqual(before.rows);
  const active = withDb(d.stateDir, (db) => db.prepare("SELECT version, model_path FROM profiles WHERE state = 'active'").all()) as { version: number; model_path: string }[];
  expect(active.map((a) => a.version)).toEqual([v]);
  expect(existsSync(active[0].model_path)).toBe(true);
  return { s, list };
}

async function snapshot(d: Daemon) {
  await sleep(400); // the buffer flushes every 200 ms
  const s = await d.status();
  return { active: s.calibration.version as number, rows: s.buffer.rows as number, kept: keptVersions(await calibrations(d)) };
}

describe('calibd serve: kill -9', () => {
  let d: Daemon;

  it('during a full recalibration: the last active (or newly activated) version, every profile and every flushed sample survive', async () => {
    d = daemon = await startDaemon();
    await sendDigits(d, train.images, 320);
    await waitFor('first live calibration', async () => {
      const s = await d.status();
      return s.calibration.version > 1 && !s.calibration.running && s.buffer.rows >= 300 ? s : undefined;
    });
    const outcomes: string[] = [];
    for (const delay of [5, 150, 1000]) {
      const before = await snapshot(d);
      const pending = post(d, '/v2/calibd/recalibrate', { full: true }).catch(() => null);
      await sleep(delay);
      await d.kill9();
      const answered = await pending;
      // What a kill inside writeFileAtomic leaves: a torn temporary next to the models.
      const torn = join(d.stateDir, 'models', `.0123456789abcdef.onnx.4242.${Date.now()}.tmp`);
      writeFileSync(torn, 'half a model');
      d = await restart(d);
      expect(existsSync(torn), 'torn temporary model file').toBe(false);
      const { s, list } = await checkRecovered(d, before);
      const newest = Math.max(...list.map((c) => c.version));
      outcomes.push(
        `${delay} ms: ${answered ? `answered ${answered.body.state} v${answered.body.version}` : 'killed'}, ` +
          `serves v${s.calibration.version} (was v${before.active}), newest v${newest}, rows ${s.buffer.rows} ≥ ${before.rows}`,
      );
    }
    console.log(`kill -9 during recalibration: ${outcomes.join('; ')}`);
    // A killed write leaves no model file that no profile names.
    const named = new Set(withDb(d.stateDir, (db) => db.prepare('SELECT model_path FROM profiles WHERE model_path IS NOT NULL').pluck().all()) as string[]);
    for (const f of readdirSync(join(d.stateDir, 'models'))) expect(named.has(join(d.stateDir, 'models', f)), f).toBe(true);
  }, 90_000);

  it('during hot swaps: serves an accepted version whose model file exists and loads', async () => {
    const accepted = (await calibrations(d)).filter((c) => c.state !== 'rejected').map((c) => c.version as number);
    expect(accepted.length).toBeGreaterThanOrEqual(2);
    const [a, b] = accepted.slice(0, 2);
    const outcomes: string[] = [];
    for (const delay of [0, 40]) {
      const before = await snapshot(d);
      let stop = false;
      let swaps = 0;
      const loop = (async () => {
        for (let k = 0; !stop; k++) {
          const r = await post(d, '/v2/calibd/rollback', { version: k % 2 ? a : b }).catch(() => null);
          if (!r) return;
          if (r.status === 200) swaps++;
        }
      })();
      await sleep(delay);
      await d.kill9();
      stop = true;
      await loop;
      d = await restart(d);
      const { s } = await checkRecovered(d, before, [a, b]);
      const path = withDb(d.stateDir, (db) => db.prepare('SELECT model_path FROM profiles WHERE version = ?').pluck().get(s.calibration.version)) as string;
      const session = await ort.InferenceSession.create(path);
      await session.release();
      outcomes.push(`${delay} ms: ${swaps} rollbacks answered, serves v${s.calibration.version}`);
    }
    console.log(`kill -9 during swaps (v${a} ⇄ v${b}): ${outcomes.join('; ')}`);
  }, 60_000);

  it('while samples are written: the database passes its integrity check and keeps every flushed row', async () => {
    const movedBefore = readdirSync(d.stateDir).filter((f) => f.includes('.corrupt-')).length;
    const errorsBefore = withDb(d.stateDir, (db) => db.prepare("SELECT COUNT(*) FROM events WHERE type = 'error'").pluck().get()) as number;
    let stop = false;
    let lastRows = 0;
    const clients = sendUntil(d, () => stop);
    const poll = (async () => {
      while (!stop) {
        const s = await d.status().catch(() => null);
        if (s) lastRows = s.buffer.rows;
        await sleep(50);
      }
    })();
    await sleep(1200);
    const seen = lastRows;
    await d.kill9();
    stop = true;
    await Promise.all([clients, poll]);
    d = await restart(d);
    const s = await d.status();
    const check = withDb(d.stateDir, (db) => ({
      integrity: db.pragma('integrity_check', { simple: true }),
      rows: db.prepare('SELECT COUNT(*) FROM samples').pluck().get() as number,
      groups: db.prepare('SELECT IFNULL(SUM(rows), 0) FROM sample_groups').pluck().get() as number,
      torn: db.prepare("SELECT COUNT(*) FROM samples WHERE length(data) != 4 * 784 OR json_valid(header) = 0").pluck().get() as number,
      errors: db.prepare("SELECT COUNT(*) FROM events WHERE type = 'error'").pluck().get() as number,
    }));
    console.log(`kill -9 while sampling: ${seen} rows seen flushed before the kill, ${check.rows} after restart, integrity ${check.integrity}`);
    expect(check.integrity).toBe('ok');
    expect(check.errors).toBe(errorsBefore);
    expect(readdirSync(d.stateDir).filter((f) => f.includes('.corrupt-')).length).toBe(movedBefore);
    expect(seen).toBeGreaterThan(0);
    expect(check.rows).toBeGreaterThanOrEqual(seen);
    expect(check.groups).toBe(check.rows);
    expect(check.torn).toBe(0);
    expect(s.buffer.rows).toBe(check.rows);
    const r = await inferOne(d, train.images, 3);
    expect(tenLogits(r)).toBe(true);
  }, 60_000);
});

/** Four clients sending digits until told to stop or the daemon goes away. */
async function sendUntil(d: Daemon, stopped: () => boolean): Promise<void> {
  await Promise.all(
    Array.from({ length: 4 }, async (_, c) => {
      for (let i = c; !stopped(); i += 4) {
        const r = await inferOne(d, train.images, 400 + (i % 3000));
        if (r.status === 0) return;
      }
    }),
  );
}

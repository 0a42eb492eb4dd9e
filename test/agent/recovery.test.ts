// Recovery from a lost state database keeps every calibrated model. With garbage written
// into calibd.db (or the file truncated) while calibd was stopped, the database is moved
// aside; the version table is then rebuilt from the calibration each INT8 model file
// carries, so the daemon comes back on INT8 instead of falling back to data-free, and no
// model file is deleted. The active version is the one the damaged database still names
// when that part of it is readable, else the newest calibration, and an event says which.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { cpSync, existsSync, openSync, readdirSync, rmSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { activeEverywhere, agentConfig, feed, infer, startAgent, tempState, type TestAgent } from './helpers.js';

let running: TestAgent | undefined;
afterEach(async () => {
  await running?.agent.close();
  running = undefined;
});

/** A stopped daemon's state: v1 data-free, v2 minmax, v3 percentile, then rolled back to v2. */
const template = { dir: '', files: new Map<number, string>(), logits: new Map<number, number[]>() };

beforeAll(async () => {
  template.dir = tempState();
  const { agent } = await startAgent(agentConfig(template.dir));
  try {
    await feed(agent, 150);
    expect(await agent.recalibrate({ method: 'minmax' })).toMatchObject({ version: 2, state: 'accepted' });
    template.logits.set(2, (await infer(agent, 7)).logits);
    await feed(agent, 40, 150);
    expect(await agent.recalibrate({ method: 'percentile' })).toMatchObject({ version: 3, state: 'accepted' });
    template.logits.set(3, (await infer(agent, 7)).logits);
    expect(template.logits.get(3)).not.toEqual(template.logits.get(2));
    await agent.rollback({ version: 2 });
    for (const v of [1, 2, 3]) template.files.set(v, basename(agent.profiles.get(v)!.modelPath!));
  } finally {
    await agent.close();
  }
}, 60_000);

function copyOfTemplate(): string {
  const dir = tempState();
  cpSync(template.dir, dir, { recursive: true });
  expect(existsSync(join(dir, 'calibd.db-wal'))).toBe(false);
  return dir;
}

function modelsIn(dir: string): string[] {
  return readdirSync(join(dir, 'models')).sort();
}

/** The rebuilt version whose model file was `v`'s before the database was lost. */
function rebuiltVersionOf(t: TestAgent, v: number): number {
  const match = t.agent.profiles.list({ limit: Infinity }).find((p) => p.modelPath && basename(p.modelPath) === template.files.get(v));
  return match!.version;
}

async function checkRecovered(dir: string, servedWas: number, activeFrom: string) {
  running = await startAgent(agentConfig(dir));
  const t = running;
  expect(readdirSync(dir).filter((f) => f.startsWith('calibd.db.corrupt-') && !/-(wal|shm)$/.test(f))).toHaveLength(1);
  // Every model file is still there, each accounted for by a version; nothing new was made.
  for (const f of template.files.values()) expect(modelsIn(dir)).toContain(f);
  const list = t.agent.profiles.list({ limit: Infinity });
  expect(list).toHaveLength(3);
  expect(list.map((p) => p.state).sort()).toEqual(['accepted', 'accepted', 'active']);
  expect(list.map((p) => p.method).sort()).toEqual(['datafree', 'minmax', 'percentile']);

  const active = rebuiltVersionOf(t, servedWas);
  expect(activeEverywhere(t.agent)).toEqual({ engine: active, status: active, db: [active] });
  expect((t.agent.status() as { serving: string }).serving).toBe('int8');
  expect((await infer(t.agent, 7)).logits).toEqual(template.logits.get(servedWas));

  // Start-up events happen before a listener can attach: read them from the event log.
  const rebuilt = t.agent.events.list({ type: 'state.rebuilt' });
  expect(rebuilt).toHaveLength(1);
  expect(rebuilt[0].data).toMatchObject({ versions: [1, 2, 3], active, activeFrom });
  return t;
}

function rebuiltEvent(t: TestAgent): { message: string; unaccounted: string[] } {
  return t.agent.events.list({ type: 'state.rebuilt' })[0].data as { message: string; unaccounted: string[] };
}

describe('restart after calibd.db was damaged while stopped', () => {
  it('garbage: rebuilds the versions from the model files, serves the newest, says so, deletes nothing', async () => {
    const dir = copyOfTemplate();
    writeFileSync(join(dir, 'calibd.db'), randomBytes(64 * 1024));
    // A file in the models folder that is no calibration: kept under another name, not deleted.
    const junk = join(dir, 'models', '0123456789abcdef.onnx');
    writeFileSync(junk, 'not a model');

    const t = await checkRecovered(dir, 3, 'newest calibration');
    const rebuilt = rebuiltEvent(t);
    expect(rebuilt.message).toMatch(/which version was active is not known .* the newest calibration of this model is made active/);
    expect(rebuilt.unaccounted).toEqual([junk]);
    expect(existsSync(`${junk}.unaccounted`)).toBe(true);
    expect(t.agent.events.list({ type: 'first-boot' })).toEqual([]);

    // The next start is an ordinary one: same version, every file still referenced and kept.
    const before = activeEverywhere(t.agent);
    await t.agent.close();
    running = await startAgent(agentConfig(dir));
    expect(activeEverywhere(running.agent)).toEqual(before);
    expect(running.agent.events.list({ type: 'state.rebuilt' })).toHaveLength(1);
    for (const f of template.files.values()) expect(modelsIn(dir)).toContain(f);
  }, 60_000);

  it('damage outside the version table: the active version (v2, rolled back to) survives', async () => {
    const dir = copyOfTemplate();
    const file = join(dir, 'calibd.db');
    const raw = new Database(file, { readonly: true });
    const pageSize = raw.pragma('page_size', { simple: true }) as number;
    const samplesRoot = raw.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'samples'").pluck().get() as number;
    raw.close();
    const fd = openSync(file, 'r+');
    writeSync(fd, randomBytes(pageSize), 0, pageSize, (samplesRoot - 1) * pageSize);
    closeSync(fd);

    const t = await checkRecovered(dir, 2, 'damaged database');
    expect(rebuiltEvent(t).message).toMatch(/the one the damaged database still names/);
  }, 60_000);

  it('truncated: the files are kept and the newest calibration serves', async () => {
    const dir = copyOfTemplate();
    truncateSync(join(dir, 'calibd.db'), 1000);
    rmSync(join(dir, 'calibd.db-shm'), { force: true });
    await checkRecovered(dir, 3, 'newest calibration');
  }, 60_000);
});

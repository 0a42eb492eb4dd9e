import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { EventLog, SampleBuffer, SCHEMA_VERSION, openStateDb, type StateDb } from '../../src/state/index.js';
import type { Logger } from '../../src/common/index.js';
import { StateError } from '../../src/common/index.js';
import { repoRoot } from '../helpers/paths.js';
import { bytesOf, image, inputs, tempStateDir } from './helpers.js';

let open: StateDb[] = [];
function track(s: StateDb): StateDb {
  open.push(s);
  return s;
}
afterEach(() => {
  for (const s of open) s.close();
  open = [];
});

function recordingLogger(): Logger & { errors: object[] } {
  const errors: object[] = [];
  return { errors, info() {}, warn() {}, error: (obj: object) => void errors.push(obj) };
}

describe('openStateDb', () => {
  it('creates the folder and a versioned schema, idempotently', () => {
    const dir = join(tempStateDir(), 'nested', 'state');
    const s = track(openStateDb(dir));
    expect(existsSync(join(dir, 'calibd.db'))).toBe(true);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(s.movedAside).toBeNull();
    s.close();
    const again = track(openStateDb(dir));
    expect(again.movedAside).toBeNull();
    expect(new EventLog(again).list()).toEqual([]);
  });

  it('moves a file of garbage aside and starts fresh with an error event', () => {
    const dir = tempStateDir();
    const garbage = Buffer.alloc(8192, 0);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) % 251;
    writeFileSync(join(dir, 'calibd.db'), garbage);
    writeFileSync(join(dir, 'calibd.db-wal'), 'not a wal');
    const logger = recordingLogger();

    const s = track(openStateDb(dir, { logger }));
    expect(s.movedAside).toMatch(/calibd\.db\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/);
    expect(readFileSync(s.movedAside!).equals(garbage)).toBe(true);
    // SQLite removes the WAL when the failed connection closes; none may leak into the new db.
    expect(readdirSync(dir).filter((f) => f.startsWith('calibd.db') && !f.includes('.corrupt-')).sort()).toEqual(['calibd.db', 'calibd.db-shm', 'calibd.db-wal']);
    expect(logger.errors).toHaveLength(1);

    const events = new EventLog(s).list();
    expect(events).toHaveLength(1);
    expect(events[0].type).toBe('error');
    expect(events[0].data).toMatchObject({ movedTo: s.movedAside, problem: expect.stringMatching(/not a database/) });

    const buf = new SampleBuffer(s);
    buf.add({ inputs: inputs(1) });
    buf.flush();
    expect(buf.count()).toBe(1);
  });

  it('moves a truncated database aside', () => {
    const dir = tempStateDir();
    const s = openStateDb(dir);
    const buf = new SampleBuffer(s, { batchSize: 500 });
    for (let i = 0; i < 600; i++) buf.add({ inputs: inputs(i), predicted: i % 10 });
    s.close();
    const file = join(dir, 'calibd.db');
    const size = statSync(file).size;
    expect(existsSync(`${file}-wal`)).toBe(false);
    // Cut in the middle of a page, well inside the table.
    truncateSync(file, Math.floor(size / 2 / 4096) * 4096 + 1000);

    const fresh = track(openStateDb(dir, { logger: recordingLogger() }));
    expect(fresh.movedAside).not.toBeNull();
    expect(new SampleBuffer(fresh).count()).toBe(0);
    expect(new EventLog(fresh).list({ type: 'error' })).toHaveLength(1);
    expect(readdirSync(dir).filter((f) => f.includes('.corrupt-'))).toHaveLength(1);
  });

  it('a folder named calibd.db, or a file in place of the state folder: a StateError naming the path', () => {
    const dir = tempStateDir();
    const dbPath = join(dir, 'calibd.db');
    mkdirSync(dbPath);
    const err = (() => {
      try {
        openStateDb(dir);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StateError);
    expect(err).toMatchObject({ code: 'state', value: dbPath });
    expect((err as StateError).oneLine()).toBe(`the state database ${dbPath} is not a file: move it out of the way (calibd creates calibd.db itself), or point stateDir at another folder`);
    // Nothing was moved aside or created next to it.
    expect(readdirSync(dir)).toEqual(['calibd.db']);

    const notAFolder = join(dir, 'state-file');
    writeFileSync(notAFolder, '');
    expect(() => openStateDb(join(notAFolder, 'state'))).toThrow(expect.objectContaining({ code: 'state', value: join(notAFolder, 'state') }));
  });

  it('moves aside a database from a newer calibd instead of crash-looping', () => {
    const dir = tempStateDir();
    const raw = new Database(join(dir, 'calibd.db'));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const s = track(openStateDb(dir));
    expect(s.movedAside).not.toBeNull();
    expect(JSON.stringify(new EventLog(s).list()[0].data)).toContain('newer');
  });

  it('keeps every flushed row when the process is killed with SIGKILL', () => {
    const dir = tempStateDir();
    const script = join(dir, 'writer.mts');
    const api = pathToFileURL(join(repoRoot, 'src', 'state', 'index.ts')).href;
    const helpers = pathToFileURL(join(repoRoot, 'test', 'state', 'helpers.ts')).href;
    writeFileSync(
      script,
      `import { openStateDb, SampleBuffer } from ${JSON.stringify(api)};
import { inputs } from ${JSON.stringify(helpers)};
const state = openStateDb(${JSON.stringify(dir)});
const buf = new SampleBuffer(state, { batchSize: 10_000, flushMs: 60_000 });
for (let i = 0; i < 30; i++) buf.add({ inputs: inputs(i), predicted: i % 10, time: 1_800_000_000_000 + i });
buf.flush();
for (let i = 30; i < 50; i++) buf.add({ inputs: inputs(i), predicted: i % 10, time: 1_800_000_000_000 + i });
buf.flush();
// Queued but never flushed, and a write transaction left open: both must vanish cleanly.
for (let i = 50; i < 70; i++) buf.add({ inputs: inputs(i), time: 1_800_000_000_000 + i });
state.db.prepare('BEGIN').run();
state.db.prepare("INSERT INTO events (time, type, data) VALUES (1, 'uncommitted', NULL)").run();
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    expect(child.stderr).not.toMatch(/Error/);
    expect(child.signal).toBe('SIGKILL');
    // The rows live only in the WAL: nothing was checkpointed into the main file.
    expect(existsSync(join(dir, 'calibd.db-wal'))).toBe(true);

    const s = track(openStateDb(dir));
    expect(s.movedAside).toBeNull();
    const buf = new SampleBuffer(s, { maxAgeMs: Infinity });
    const rows = [...buf.iterate()];
    expect(rows).toHaveLength(50);
    rows.forEach((r, i) => {
      expect(r.time).toBe(1_800_000_000_000 + i);
      expect(r.predicted).toBe(i % 10);
      expect(bytesOf(r.inputs.x.data).equals(bytesOf(image(i)))).toBe(true);
    });
    expect(new EventLog(s).list()).toEqual([]);
    expect(s.db.pragma('quick_check', { simple: true })).toBe('ok');
  });
});

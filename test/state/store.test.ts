import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { EventLog, ProfileStore, openStateDb, planEviction, type NewProfile, type StateDb } from '../../src/state/index.js';
import { OptionError } from '../../src/common/index.js';
import { CommitFaults } from '../helpers/faults.js';
import { tempStateDir } from './helpers.js';

let open: StateDb[] = [];
function state(dir = tempStateDir()): StateDb {
  const s = openStateDb(dir, { logger: pino({ level: 'silent' }) });
  open.push(s);
  return s;
}
afterEach(() => {
  for (const s of open) s.close();
  open = [];
});

function profile(over: Partial<NewProfile> = {}): NewProfile {
  return {
    method: 'percentile',
    options: { percentile: 99.99 },
    sampleCount: 500,
    modelSha256: 'ab'.repeat(32),
    figures: { agreement: 99.2, sqnrDb: 31.5 },
    modelPath: '/var/lib/calibd/models/v1.onnx',
    profile: { tensors: { conv1: { min: 0, max: 4.2 } } },
    ...over,
  };
}

describe('ProfileStore', () => {
  it('a failed commit rolls back the whole write: no new version, the active one unchanged', () => {
    const faults = new CommitFaults();
    const s = openStateDb(tempStateDir(), { logger: pino({ level: 'silent' }), beforeCommit: faults.hook });
    open.push(s);
    const p = new ProfileStore(s);
    const v1 = p.insert(profile({ state: 'active' }));
    faults.arm('profiles', 'SQLITE_FULL');
    expect(() => p.insert(profile({ state: 'active' }))).toThrow(expect.objectContaining({ code: 'SQLITE_FULL' }));
    expect(faults.fired).toEqual(['profiles.insert:SQLITE_FULL']);
    expect(p.list().map((r) => [r.version, r.state])).toEqual([[v1, 'active']]);
    const v2 = p.insert(profile());
    faults.arm('profiles', 'SQLITE_IOERR');
    expect(() => p.setActive(v2)).toThrow(expect.objectContaining({ code: 'SQLITE_IOERR' }));
    expect(p.active()?.version).toBe(v1);
    expect(p.get(v2)?.state).toBe('accepted');
  });

  it('inserts and reads back every field', () => {
    const p = new ProfileStore(state());
    const v = p.insert(profile({ createdAt: 1234 }));
    expect(v).toBe(1);
    expect(p.get(v)).toEqual({ ...profile(), version: 1, parent: null, state: 'accepted', createdAt: 1234 });
    expect(p.get(99)).toBeUndefined();
    expect(p.active()).toBeUndefined();
  });

  it('activates, demotes the previous one, and rolls back', () => {
    const p = new ProfileStore(state());
    const v1 = p.insert(profile({ state: 'active' }));
    expect(p.active()?.version).toBe(v1);
    const v2 = p.insert(profile({ parent: v1 }));
    p.setActive(v2);
    expect(p.get(v1)?.state).toBe('accepted');
    expect(p.active()?.version).toBe(v2);
    expect(p.get(v2)?.parent).toBe(v1);

    // v2 misbehaves in service: go back to its parent.
    p.setActive(v1, { rollback: true });
    expect(p.get(v2)?.state).toBe('rolled_back');
    expect(p.active()?.version).toBe(v1);

    const v3 = p.insert(profile({ parent: v1, state: 'rejected', figures: { agreement: 80 } }));
    expect(() => p.setActive(v3)).toThrow(OptionError);
    expect(() => p.setActive(42)).toThrow(/does not exist/);
    expect(p.active()?.version).toBe(v1);
    expect(p.list().map((r) => [r.version, r.state])).toEqual([[3, 'rejected'], [2, 'rolled_back'], [1, 'active']]);
    expect(p.list({ limit: 1 })).toHaveLength(1);
    expect(p.list({ modelSha256: 'other' })).toEqual([]);
  });

  it('setState changes a state but never activates', () => {
    const p = new ProfileStore(state());
    const v = p.insert(profile({ state: 'active' }));
    p.setState(v, 'rolled_back');
    expect(p.active()).toBeUndefined();
    expect(() => p.setState(v, 'active' as never)).toThrow(/setActive/);
    expect(() => p.setState(v, 'bogus' as never)).toThrow(OptionError);
    expect(() => p.setState(77, 'accepted')).toThrow(/does not exist/);
  });

  it('the database itself refuses a second active profile', () => {
    const s = state();
    const p = new ProfileStore(s);
    p.insert(profile({ state: 'active' }));
    const v2 = p.insert(profile());
    expect(() => s.db.prepare("UPDATE profiles SET state = 'active' WHERE version = ?").run(v2)).toThrow(/UNIQUE/);
  });

  it('survives a reopen', () => {
    const dir = tempStateDir();
    const s = state(dir);
    new ProfileStore(s).insert(profile({ state: 'active' }));
    s.close();
    expect(new ProfileStore(state(dir)).active()?.method).toBe('percentile');
  });
});

describe('EventLog', () => {
  it('appends and lists newest first, by time and type', () => {
    let now = 1000;
    const log = new EventLog(state(), { now: () => now });
    log.append('recalibrated', { version: 1 });
    now = 2000;
    log.append('rejected', { version: 2, agreement: 80 });
    now = 3000;
    log.append('swap');
    expect(log.list().map((e) => e.type)).toEqual(['swap', 'rejected', 'recalibrated']);
    expect(log.list({ since: 2000 }).map((e) => e.time)).toEqual([3000, 2000]);
    expect(log.list({ limit: 1 })[0]).toEqual({ id: 3, time: 3000, type: 'swap', data: null });
    expect(log.list({ type: 'rejected' })[0].data).toEqual({ version: 2, agreement: 80 });
  });

  it('keeps only the newest maxEvents', () => {
    const s = state();
    const log = new EventLog(s, { maxEvents: 50 });
    for (let i = 0; i < 500; i++) log.append('tick', { i });
    const all = log.list({ limit: 1000 });
    expect(all).toHaveLength(50);
    expect(all[0].data).toEqual({ i: 499 });
    expect(all[49].data).toEqual({ i: 450 });
    expect(s.db.prepare('SELECT COUNT(*) AS n FROM events').get()).toEqual({ n: 50 });
    expect(new EventLog(s).maxEvents).toBe(10_000);
  });
});

describe('planEviction', () => {
  it('does nothing within bounds', () => {
    expect(planEviction([{ cls: 1, bucket: 1, rows: 5, bytes: 50 }], 5, 50)).toEqual([]);
  });

  it('takes from the largest class first, then its fullest (older on ties) hour', () => {
    const steps = planEviction(
      [
        { cls: 0, bucket: 1, rows: 4, bytes: 40 },
        { cls: 0, bucket: 2, rows: 4, bytes: 40 },
        { cls: 1, bucket: 1, rows: 2, bytes: 20 },
        { cls: -1, bucket: 3, rows: 1, bytes: 10 },
      ],
      9,
      1e9,
    );
    expect(steps).toEqual([
      { cls: 0, bucket: 1, count: 1 },
      { cls: 0, bucket: 2, count: 1 },
    ]);
  });

  it('prefers the rare class over its concentrated hour', () => {
    // Class 5 holds 3 rows in one hour; class 0 holds 12 rows spread thinly over 12 hours.
    const groups = [{ cls: 5, bucket: 0, rows: 3, bytes: 30 }, ...Array.from({ length: 12 }, (_, h) => ({ cls: 0, bucket: h, rows: 1, bytes: 10 }))];
    const steps = planEviction(groups, 10, 1e9);
    expect(steps.every((s) => s.cls === 0)).toBe(true);
    expect(steps.reduce((a, s) => a + s.count, 0)).toBe(5);
  });

  it('meets a byte bound with estimated row sizes', () => {
    const steps = planEviction([{ cls: 0, bucket: 0, rows: 10, bytes: 1000 }], 100, 450);
    expect(steps).toEqual([{ cls: 0, bucket: 0, count: 6 }]);
  });
});

// Fault injection on the state directory, on the real agent: real SQLite file, real ORT
// sessions, real calibration worker. ENOSPC and EIO hit the model file's write, its fsync,
// the folder's fsync and the rename (through the FsOps seam of writeFileAtomic); SQLITE_FULL
// and SQLITE_IOERR hit the commits that accept a calibration, record a rollback and store
// sampled inputs (through StateDb's commit hook). After every fault:
//   - serving goes on, and the engine, status and the database name the same version;
//   - the error is reported as an event carrying the disk's or SQLite's code;
//   - nothing accepted is lost: every accepted version is listed and its file exists, and
//     the models folder holds exactly the files the database names (no temporaries);
//   - a new agent on the same state folder comes back on the version status reported.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { StateError } from '../../src/common/index.js';
import { CommitFaults, FaultyFs, type DiskErrno, type FsOp, type SqliteFault } from '../helpers/faults.js';
import { activeEverywhere, agentConfig, digit, feed, infer, startAgent, tempState, type TestAgent } from './helpers.js';

const dir = tempState();
const config = agentConfig(dir);
const fs = new FaultyFs();
const commits = new CommitFaults();
let running: TestAgent | undefined;

afterAll(async () => {
  await running?.agent.close();
});

async function start(): Promise<TestAgent> {
  running = await startAgent(config, { fs, beforeCommit: commits.hook });
  return running;
}

/** Accepted versions with their model files: what no fault may take away. */
function acceptedFiles(t: TestAgent): Map<number, string> {
  const out = new Map<number, string>();
  for (const p of t.agent.profiles.list({ limit: Infinity })) if (p.state !== 'rejected' && p.modelPath) out.set(p.version, p.modelPath);
  return out;
}

interface Fault {
  name: string;
  arm(): void;
  /** Runs the operation the fault hits; resolves to the error it raised (or null). */
  act(t: TestAgent): Promise<unknown>;
  /** The code the error and its event carry. */
  code: string;
  /** The event that reports it. */
  event: string;
}

const fileFault = (op: FsOp, code: DiskErrno, nth = 1, what: string = op): Fault => ({
  name: `${code} on the model file's ${what}`,
  arm: () => fs.arm(op, code, nth),
  act: (t) => t.agent.recalibrate({ method: 'percentile' }).then(() => null, (err: unknown) => err),
  code,
  event: 'calibration.failed',
});

const acceptCommit = (code: SqliteFault): Fault => ({
  name: `${code} on the commit accepting a calibration`,
  arm: () => commits.arm('profiles', code),
  act: (t) => t.agent.recalibrate({ method: 'percentile' }).then(() => null, (err: unknown) => err),
  code,
  event: 'calibration.failed',
});

const rollbackCommit = (code: SqliteFault): Fault => ({
  name: `${code} on the commit recording a rollback`,
  arm: () => commits.arm('profiles', code),
  act: (t) => t.agent.rollback({ version: 1 }).then(() => null, (err: unknown) => err),
  code,
  event: 'rollback.failed',
});

const sampleCommit = (code: SqliteFault): Fault => ({
  name: `${code} on the commit storing sampled inputs`,
  arm: () => commits.arm('samples.flush', code),
  act: async (t) => {
    const rows = t.agent.buffer.count();
    for (let i = 0; i < 5; i++) t.agent.onInference({ input: { shape: [1, 1, 28, 28], data: digit(300 + i) } });
    for (let k = 0; k < 200 && commits.pending; k++) await new Promise((r) => setTimeout(r, 25));
    expect(t.agent.buffer.count()).toBe(rows); // the batch was dropped, nothing half-written
    return null;
  },
  code,
  event: 'error',
});

const faults: Fault[] = [
  fileFault('write', 'ENOSPC'),
  fileFault('write', 'EIO'),
  fileFault('fsync', 'ENOSPC'),
  fileFault('fsync', 'EIO'),
  fileFault('fsync', 'EIO', 2, 'folder fsync'),
  fileFault('rename', 'ENOSPC'),
  fileFault('rename', 'EIO'),
  acceptCommit('SQLITE_FULL'),
  acceptCommit('SQLITE_IOERR'),
  rollbackCommit('SQLITE_FULL'),
  rollbackCommit('SQLITE_IOERR'),
  sampleCommit('SQLITE_FULL'),
  sampleCommit('SQLITE_IOERR'),
];

describe('state directory under injected disk faults', () => {
  it('starts with a data-free v1 and a live v2', async () => {
    const t = await start();
    await feed(t.agent, 150);
    expect(await t.agent.recalibrate({ method: 'minmax' })).toMatchObject({ version: 2, state: 'accepted' });
    expect(activeEverywhere(t.agent)).toEqual({ engine: 2, status: 2, db: [2] });
  }, 60_000);

  for (const fault of faults) {
    it(`${fault.name}: serving goes on consistently, the error is an event, nothing accepted is lost, a restart agrees`, async () => {
      let t = running!;
      const before = { active: activeEverywhere(t.agent), accepted: acceptedFiles(t), served: await infer(t.agent, 3) };
      const eventsBefore = t.agent.events.list({ limit: 1 })[0]?.id ?? 0;

      fault.arm();
      const err = await fault.act(t);
      expect(fs.pending || commits.pending, 'the fault fired').toBe(false);
      if (err !== null) {
        expect(err).toBeInstanceOf(StateError);
        expect((err as StateError).message).toContain(fault.code);
      }

      // Serving goes on with the same, consistent version.
      expect(activeEverywhere(t.agent)).toEqual(before.active);
      expect(await infer(t.agent, 3)).toEqual(before.served);

      // The error is an event, with the disk's or SQLite's code.
      const reported = t.agent.events.list({ type: fault.event }).filter((e) => e.id > eventsBefore);
      expect(reported.map((e) => (e.data as { code: string }).code)).toEqual([fault.code]);

      // Nothing accepted is lost, and the folder holds exactly the files the database names.
      expect(acceptedFiles(t)).toEqual(before.accepted);
      for (const path of before.accepted.values()) expect(existsSync(path)).toBe(true);
      expect(readdirSync(join(dir, 'models')).sort()).toEqual([...before.accepted.values()].map((p) => basename(p)).sort());

      // A new agent on the same folder comes back on what status said.
      await t.agent.close();
      t = await start();
      expect(activeEverywhere(t.agent)).toEqual(before.active);
      expect(await infer(t.agent, 3)).toEqual(before.served);
    }, 60_000);
  }

  it('after every fault, the same operations succeed: a new version is accepted, rolled back, and restored', async () => {
    let t = running!;
    expect(await t.agent.recalibrate({ method: 'percentile' })).toMatchObject({ version: 3, state: 'accepted' });
    expect(await t.agent.rollback({ version: 1 })).toEqual({ version: 1 });
    expect(activeEverywhere(t.agent)).toEqual({ engine: 1, status: 1, db: [1] });
    await t.agent.close();
    t = await start();
    expect(activeEverywhere(t.agent)).toEqual({ engine: 1, status: 1, db: [1] });
    expect([...acceptedFiles(t).keys()].sort()).toEqual([1, 2, 3]);
  }, 60_000);
});

// A rollback whose database write fails (a full disk: SQLITE_FULL on the real SQLite file)
// must change nothing: the engine keeps serving the version status, the database and the
// fleet report, the caller gets a typed error, and a rollback.failed event says why.
import { afterEach, describe, expect, it } from 'vitest';
import { StateError } from '../../src/common/index.js';
import { CommitFaults } from '../helpers/faults.js';
import { activeEverywhere, agentConfig, feed, infer, startAgent, tempState, type TestAgent } from './helpers.js';

let running: TestAgent | undefined;
afterEach(async () => {
  await running?.agent.close();
  running = undefined;
});

describe('rollback when the database write fails', () => {
  it('keeps serving what the database says, reports the error, and rolls back once the disk has room', async () => {
    const stateDir = tempState();
    const faults = new CommitFaults();
    const config = agentConfig(stateDir);
    running = await startAgent(config, { beforeCommit: faults.hook });
    const { agent, events } = running;
    await feed(agent, 150);
    const accepted = await agent.recalibrate({});
    expect(accepted).toMatchObject({ version: 2, state: 'accepted' });
    expect(activeEverywhere(agent)).toEqual({ engine: 2, status: 2, db: [2] });
    const v2 = await infer(agent, 7);

    faults.arm('profiles', 'SQLITE_FULL');
    const failed = await agent.rollback({ version: 1 }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(faults.fired).toEqual(['profiles.activate:SQLITE_FULL']);
    expect(activeEverywhere(agent)).toEqual({ engine: 2, status: 2, db: [2] });
    expect(await infer(agent, 7)).toEqual(v2);
    expect(failed).toBeInstanceOf(StateError);
    expect(failed).toMatchObject({ code: 'state', value: `${stateDir}/calibd.db` });
    expect((failed as StateError).oneLine()).toMatch(/^recording the rollback to v1 failed \(SQLITE_FULL: database or disk is full\); nothing was changed: free space on the disk holding /);
    expect(agent.calibrations().map((c) => (c as { state: string }).state)).toEqual(['active', 'accepted']);
    const event = events.find((e) => e.type === 'rollback.failed');
    expect(event?.data).toMatchObject({ to: 1, code: 'SQLITE_FULL', serving: 2 });
    expect(agent.events.list({ type: 'rollback.failed' })).toHaveLength(1);

    // With room again the same rollback goes through, and every part agrees on v1.
    expect(await agent.rollback({ version: 1 })).toEqual({ version: 1 });
    expect(activeEverywhere(agent)).toEqual({ engine: 1, status: 1, db: [1] });
    const v1 = await infer(agent, 7);
    expect(v1.version).toBe(1);
    expect(v1.logits).not.toEqual(v2.logits);

    await agent.close();
    running = await startAgent(config);
    expect(activeEverywhere(running.agent)).toEqual({ engine: 1, status: 1, db: [1] });
  }, 60_000);
});

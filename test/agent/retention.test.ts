// The calibration history stays bounded. Only the newest retention.keepVersions versions a
// rollback could return to keep their model files, besides the active one; older versions
// stay listed as history without a file, and the database and the models folder agree even
// when deleting a file fails. A candidate identical to the active calibration creates no
// version at all: 20 identical recalibrations leave one version and one file.
import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { OptionError } from '../../src/common/index.js';
import { FaultyFs } from '../helpers/faults.js';
import { activeEverywhere, agentConfig, feed, startAgent, tempState, type TestAgent } from './helpers.js';

let running: TestAgent | undefined;
afterEach(async () => {
  await running?.agent.close();
  running = undefined;
});

interface Listed {
  version: number;
  state: string;
  hasModel: boolean;
}

function listed(t: TestAgent): Listed[] {
  return t.agent.calibrations() as Listed[];
}

/** The database names exactly the files in the models folder. */
function filesMatchDatabase(t: TestAgent, dir: string): string[] {
  const named = t.agent.profiles
    .list({ limit: Infinity })
    .map((p) => p.modelPath)
    .filter((p): p is string => p !== null)
    .map((p) => basename(p))
    .sort();
  expect(readdirSync(join(dir, 'models')).sort()).toEqual(named);
  return named;
}

describe('retention.keepVersions', () => {
  it('keeps the newest 2 with their files plus the active one; older ones stay listed without a file', async () => {
    const dir = tempState();
    const fs = new FaultyFs();
    const config = agentConfig(dir, { retention: { keepVersions: 2 } });
    running = await startAgent(config, { fs });
    let t = running;
    await feed(t.agent, 120);
    const methods = ['minmax', 'percentile', 'mse', 'entropy', 'minmax'] as const;
    for (const [i, method] of methods.entries()) {
      // New digits each time, so no candidate is identical to the one before.
      await feed(t.agent, 10, 120 + i * 10);
      expect(await t.agent.recalibrate({ method })).toMatchObject({ version: i + 2, state: 'accepted' });
    }
    expect(activeEverywhere(t.agent)).toEqual({ engine: 6, status: 6, db: [6] });
    expect(listed(t).map((c) => [c.version, c.state, c.hasModel])).toEqual([
      [6, 'active', true], [5, 'accepted', true], [4, 'accepted', true],
      [3, 'accepted', false], [2, 'accepted', false], [1, 'accepted', false],
    ]);
    expect(filesMatchDatabase(t, dir)).toHaveLength(3);
    expect(t.agent.events.list({ type: 'versions.pruned' }).map((e) => (e.data as { versions: number[] }).versions)).toEqual([[3], [2], [1]]);

    // A pruned version is history, not a rollback target; the default target is still there.
    await expect(t.agent.rollback({ version: 2 })).rejects.toThrow(OptionError);
    await expect(t.agent.rollback({ version: 2 })).rejects.toThrow(/version 2 has no model file any more: retention.keepVersions \(2\) pruned it/);
    expect(await t.agent.rollback({})).toEqual({ version: 5 });
    expect(activeEverywhere(t.agent)).toEqual({ engine: 5, status: 5, db: [5] });

    // Deleting a pruned file fails (EIO): the database already forgot it, so they never
    // disagree about what exists; the file left behind goes at the next start.
    fs.arm('rm', 'EIO');
    await feed(t.agent, 10, 200);
    expect(await t.agent.recalibrate({ method: 'percentile' })).toMatchObject({ version: 7, state: 'accepted' });
    expect(fs.fired).toEqual(['rm:EIO']);
    const pruned = t.agent.events.list({ type: 'versions.pruned' })[0].data as { versions: number[]; filesLeft: string[] };
    expect(pruned.versions).toEqual([4]);
    expect(pruned.filesLeft).toHaveLength(1);
    expect(t.agent.profiles.get(4)!.modelPath).toBeNull();
    expect(readdirSync(join(dir, 'models'))).toContain(basename(pruned.filesLeft[0]));

    await t.agent.close();
    running = t = await startAgent(config);
    expect(activeEverywhere(t.agent)).toEqual({ engine: 7, status: 7, db: [7] });
    expect(filesMatchDatabase(t, dir)).toHaveLength(3);

    // Lowered while stopped: the next start prunes to the new bound.
    await t.agent.close();
    running = t = await startAgent(agentConfig(dir, { retention: { keepVersions: 1 } }));
    expect(listed(t).filter((c) => c.hasModel).map((c) => c.version)).toEqual([7, 6]);
    expect(filesMatchDatabase(t, dir)).toHaveLength(2);
  }, 90_000);
});

describe('a candidate identical to the active calibration', () => {
  it('is reported as unchanged: 20 identical recalibrations add no version, file or swap', async () => {
    const dir = tempState();
    running = await startAgent(agentConfig(dir));
    const { agent } = running;
    await feed(agent, 150);
    const first = await agent.recalibrate({ full: true });
    expect(first).toMatchObject({ version: 2, state: 'accepted' });
    const swaps = agent.engine.stats().swaps;
    const files = readdirSync(join(dir, 'models')).sort();

    for (let i = 0; i < 20; i++) {
      const r = await agent.recalibrate({ full: true });
      expect(r.state).toBe('unchanged');
      expect(r.version).toBe(2);
      expect(r.reason).toBe('the candidate is identical to the active calibration v2 (same scales and zero points); no new version');
      expect(r.figures.sqnrDb).toBe(first.figures.sqnrDb);
    }
    expect(agent.profiles.count()).toBe(2);
    expect(readdirSync(join(dir, 'models')).sort()).toEqual(files);
    expect(agent.engine.stats().swaps).toBe(swaps);
    expect(agent.counts()).toMatchObject({ accepted: 1, unchanged: 20 });
    expect(agent.events.list({ type: 'calibration.unchanged' })).toHaveLength(20);
    expect(activeEverywhere(agent)).toEqual({ engine: 2, status: 2, db: [2] });

    // New data makes a different candidate, which is a new version again.
    await feed(agent, 20, 150);
    expect(await agent.recalibrate({ full: true })).toMatchObject({ version: 3, state: 'accepted' });
  }, 90_000);
});

// A long calibration history must not cost the daemon its older calibrations. A device
// whose gate keeps rejecting candidates (a scene the current calibration already fits)
// piles up rejected versions; the accepted ones behind them must keep their model files,
// stay available to rollback, and still be what a restart comes back to.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { ProfileStore, openStateDb } from '../../src/state/index.js';
import { startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { post, sendDigits, withDb } from '../helpers/serve.js';

let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

describe('calibd serve: a long history of rejected calibrations', () => {
  it('keeps the model files of older accepted versions, which stay restorable and rollback targets', async () => {
    const { train } = loadMnistSplit();
    let d = (daemon = await startDaemon({ config: { recalibration: { everyInferences: 0, minSamples: 30, validationSlice: 50 } } }));
    await sendDigits(d, train.images, 60);
    const s = await waitFor('first live calibration', async () => {
      const st = await d.status();
      return st.calibration.version > 1 && !st.calibration.running ? st : undefined;
    });
    const live: number = s.calibration.version;
    expect(await d.stop()).toBe(0);

    // 60 candidates the gate turned down since (rejected profiles keep no model file).
    const state = openStateDb(d.stateDir);
    const profiles = new ProfileStore(state);
    const template = profiles.get(live)!;
    for (let i = 0; i < 60; i++) {
      profiles.insert({ method: 'percentile', sampleCount: 100, modelSha256: template.modelSha256, profile: template.profile, figures: { reason: 'SQNR lower at equal agreement' }, parent: live, state: 'rejected' });
    }
    state.close();
    const files = () => withDb(d.stateDir, (db) => db.prepare('SELECT version, model_path FROM profiles WHERE model_path IS NOT NULL ORDER BY version').all()) as { version: number; model_path: string }[];
    const kept = files();
    expect(kept.map((f) => f.version)).toEqual([1, live]);

    d = daemon = await startDaemon({ stateDir: d.stateDir, configPath: d.configPath });
    expect((await d.status()).calibration.version).toBe(live);
    for (const f of kept) expect(existsSync(f.model_path), `v${f.version} ${f.model_path}`).toBe(true);
    const back = await post(d, '/v2/calibd/rollback', {});
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.version).toBe(1);
    expect(await d.stop()).toBe(0);

    d = daemon = await startDaemon({ stateDir: d.stateDir, configPath: d.configPath });
    const after = await d.status();
    expect(after.calibration).toMatchObject({ version: 1, method: 'datafree' });
    expect(d.logs.some((l) => l.includes('cannot be restored'))).toBe(false);
  }, 90_000);
});

// One daemon's life on a first boot without a calibration: it serves FP32 until enough
// samples arrive, the gate (97% floor, nothing INT8 to beat) accepts the first calibration,
// the rollback API moves between versions and refuses bad targets, and a restart comes
// back to the same calibration with its statistics rebuilt from the buffer.
import { afterAll, describe, expect, it } from 'vitest';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { calibrations, inferOne, logEvents, post, sendDigits, sleep, tenLogits } from '../helpers/serve.js';

const { train } = loadMnistSplit();
let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

describe('calibd serve: fp32 first boot, rollback API, restart', () => {
  let d: Daemon;

  it('serves FP32 (version 0) until minSamples, then the gate accepts a first INT8 calibration', async () => {
    d = daemon = await startDaemon({ config: { firstBoot: 'fp32' } });
    const s0 = await d.status();
    expect(s0.serving).toBe('fp32');
    expect(s0.calibration).toMatchObject({ version: 0, method: 'fp32' });
    expect((await inferOne(d, train.images, 0)).body.model_version).toBe('0');

    await sendDigits(d, train.images, 60, 4, 1);
    await sleep(400);
    const s1 = await d.status();
    expect(s1.buffer.rows).toBeGreaterThanOrEqual(60);
    expect(s1.serving).toBe('fp32');
    expect(s1.calibration.version).toBe(0);
    expect(s1.counters.recalibrations).toBe(0);
    expect(await calibrations(d)).toEqual([]);

    await sendDigits(d, train.images, 100, 4, 61);
    const s2 = await waitFor('first calibration', async () => {
      const s = await d.status();
      return s.calibration.version > 0 && !s.calibration.running ? s : undefined;
    });
    expect(s2.serving).toBe('int8');
    const first = (await calibrations(d)).find((c) => c.version === s2.calibration.version);
    expect(first.state).toBe('active');
    expect(first.figures.trigger).toBe('first-data');
    expect(first.figures.agreement).toBeGreaterThanOrEqual(97);
    expect(first.figures.reason).toMatch(/clears the 97\.00% floor/);
    expect((await inferOne(d, train.images, 5)).body.model_version).toBe(String(s2.calibration.version));
    console.log(`fp32 first boot: FP32 until ${s1.buffer.rows}+ samples, then v${first.version} ${first.method} accepted at ${first.figures.agreement}% agreement (${first.figures.validationSamples} held out), SQNR ${first.figures.sqnrDb} dB`);
  }, 60_000);

  it('rollback: to the previous accepted version by default, 400 for rejected or unknown versions; states listed', async () => {
    // The first calibration has nothing earlier to return to (FP32 is not a version).
    const none = await post(d, '/v2/calibd/rollback', {});
    expect(none.status).toBe(400);
    expect(none.body.error).toMatch(/no earlier accepted calibration/);

    // More calibrations with other estimators until there are two accepted and one rejected.
    const methods = ['minmax', 'entropy', 'mse', 'percentile', 'minmax', 'entropy', 'mse', 'percentile'];
    const results: string[] = [];
    for (const method of methods) {
      const r = await post(d, '/v2/calibd/recalibrate', { method });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      results.push(`v${r.body.version} ${method} ${r.body.state}`);
      const list = await calibrations(d);
      if (list.some((c) => c.state === 'rejected') && list.filter((c) => c.state !== 'rejected').length >= 3) break;
      await sendDigits(d, train.images, 10, 2, 200 + results.length * 10);
    }
    let list = await calibrations(d);
    const rejected = list.find((c) => c.state === 'rejected');
    expect(rejected, results.join(', ')).toBeDefined();
    const active = list.find((c) => c.state === 'active');
    const previous = list.filter((c) => c.state !== 'rejected' && c.version < active.version).sort((a, b) => b.version - a.version)[0];
    expect(previous).toBeDefined();

    const back = await post(d, '/v2/calibd/rollback', {});
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.version).toBe(previous.version);
    expect((await d.status()).calibration.version).toBe(previous.version);
    expect((await inferOne(d, train.images, 9)).body.model_version).toBe(String(previous.version));

    const toRejected = await post(d, '/v2/calibd/rollback', { version: rejected.version });
    expect(toRejected.status).toBe(400);
    expect(toRejected.body.error).toMatch(new RegExp(`version ${rejected.version} was rejected`));
    const unknown = await post(d, '/v2/calibd/rollback', { version: 9999 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatch(/no calibration version 9999/);
    const notInt = await post(d, '/v2/calibd/rollback', { version: 'two' });
    expect(notInt.status).toBe(400);
    expect(notInt.body).toMatchObject({ error: expect.stringMatching(/'version' must be a positive integer/), code: 'option' });
    expect((await d.status()).calibration.version).toBe(previous.version);

    list = await calibrations(d);
    const states = new Map(list.map((c) => [c.version, c.state]));
    expect(states.get(previous.version)).toBe('active');
    expect(states.get(active.version)).toBe('rolled_back');
    expect(states.get(rejected.version)).toBe('rejected');
    expect(new Set(states.values())).toEqual(new Set(['active', 'accepted', 'rolled_back', 'rejected']));
    console.log(`rollback API: ${results.join(', ')}; rolled back v${active.version} → v${previous.version}; states ${JSON.stringify([...states])}`);
  }, 90_000);

  it('SIGTERM and restart: same version and method, statistics restored from the buffer', async () => {
    await sleep(400); // the last samples reach the database
    const before = await d.status();
    const list = await calibrations(d);
    expect(await d.stop()).toBe(0);
    d = daemon = await startDaemon({ stateDir: d.stateDir, configPath: d.configPath });
    const after = await d.status();
    expect(after.serving).toBe('int8');
    expect(after.calibration.version).toBe(before.calibration.version);
    expect(after.calibration.method).toBe(before.calibration.method);
    expect(after.buffer.rows).toBe(before.buffer.rows);
    expect((await calibrations(d)).map((c) => [c.version, c.state])).toEqual(list.map((c) => [c.version, c.state]));
    const started = logEvents(d, 'started');
    expect(started).toHaveLength(1);
    expect(started[0].version).toBe(before.calibration.version);
    // Statistics are rebuilt in the background after the daemon is ready.
    await waitFor('statistics restored', async () => logEvents(d, 'statistics.restored').length > 0);
    const restored = logEvents(d, 'statistics.restored')[0];
    expect(restored.restoredSamples).toBeGreaterThan(0);
    expect(tenLogits(await inferOne(d, train.images, 11))).toBe(true);
    console.log(`restart: v${after.calibration.version} ${after.calibration.method} again, ${restored.restoredSamples} samples restored of ${restored.bufferRows} buffered`);
  }, 60_000);
});

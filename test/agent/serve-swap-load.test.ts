// Hot swaps under load on the real daemon: eight clients send real digits without pause
// while the test makes the daemon recalibrate and roll back between two accepted versions.
// Not one request may fail or come back malformed, whichever session it ran on.
import { afterAll, describe, expect, it } from 'vitest';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { calibrations, inferOne, percentile, post, sendDigits, sleep, tenLogits, type InferReply } from '../helpers/serve.js';

let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

describe('calibd serve: concurrency through swaps', () => {
  it('8 clients, ≥ 5 swaps, 0 failed requests', async () => {
    const { train } = loadMnistSplit();
    daemon = await startDaemon();
    const d = daemon;
    // The data-free bootstrap is v1; the first live samples produce an accepted v2.
    await sendDigits(d, train.images, 150);
    const ready = await waitFor('first live calibration', async () => {
      const s = await d.status();
      return s.calibration.version > 1 && !s.calibration.running ? s : undefined;
    });
    const a = 1;
    const b: number = ready.calibration.version;
    const swapsBefore: number = ready.engine.swaps;

    let stop = false;
    const replies: InferReply[] = [];
    const clients = Array.from({ length: 8 }, async (_, c) => {
      for (let i = c; !stop; i += 8) replies.push(await inferOne(d, train.images, 200 + (i % 2000)));
    });

    const actions: string[] = [];
    try {
      await sleep(300);
      const r = await post(d, '/v2/calibd/recalibrate', {});
      expect(r.status).toBe(200);
      actions.push(`recalibrate→v${r.body.version} ${r.body.state}`);
      for (let k = 0; k < 6; k++) {
        const target = k % 2 === 0 ? a : b;
        const rb = await post(d, '/v2/calibd/rollback', { version: target });
        expect(rb.status, JSON.stringify(rb.body)).toBe(200);
        expect(rb.body.version).toBe(target);
        actions.push(`rollback→v${target}`);
        await sleep(150);
      }
      const r2 = await post(d, '/v2/calibd/recalibrate', {});
      expect(r2.status).toBe(200);
      actions.push(`recalibrate→v${r2.body.version} ${r2.body.state}`);
      await sleep(300);
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    const s = await d.status();
    const swaps = s.engine.swaps - swapsBefore;
    const failed = replies.filter((r) => !tenLogits(r));
    const ms = replies.map((r) => r.ms).sort((x, y) => x - y);
    const versions = new Set(replies.map((r) => r.body?.model_version));
    console.log(
      `swap load: ${replies.length} requests from 8 clients, ${failed.length} failed, ${swaps} swaps (${actions.join(', ')}); ` +
        `latency p50 ${percentile(ms, 50).toFixed(1)} ms, p99 ${percentile(ms, 99).toFixed(1)} ms, max ${ms[ms.length - 1].toFixed(1)} ms; ` +
        `served versions ${[...versions].sort().join(',')}; engine errors ${s.engine.errors}, retired sessions ${s.engine.retiredSessions}`,
    );
    expect(failed.slice(0, 3)).toEqual([]);
    expect(swaps).toBeGreaterThanOrEqual(5);
    expect(replies.length).toBeGreaterThan(200);
    expect(versions.size).toBeGreaterThanOrEqual(2);
    expect(s.engine.errors).toBe(0);
    const states = new Map((await calibrations(d)).map((c) => [c.version, c.state]));
    expect(['active', 'accepted', 'rolled_back']).toContain(states.get(a));
    expect(['active', 'accepted', 'rolled_back']).toContain(states.get(b));
  }, 90_000);
});

// Hot swaps seen from the outside: 8 HTTP clients keep inferring while the engine swaps
// between two models; no request may fail and each answer must match its reported version.
import { describe, expect, it } from 'vitest';
import { randomInputs } from '../helpers/models.js';
import { directRun, modelA, modelB, PIXELS, postJson, startServer } from './helpers.js';

describe('HTTP under hot swaps', () => {
  it('8 clients, 5+ swaps, 0 failed requests', async () => {
    const s = await startServer();
    try {
      const seeds = [31, 32, 33];
      const inputs = seeds.map((seed) => randomInputs(1, PIXELS, seed));
      const models = [modelA, modelB];
      const expected = await Promise.all(models.map((m) => Promise.all(inputs.map((x) => directRun(m, x, 1)))));
      const modelOf = (version: number) => (version % 2 === 1 ? 0 : 1);

      let failed = 0;
      let wrong = 0;
      const latencies: number[] = [];
      const versions = new Set<string>();
      const client = async (id: number) => {
        for (let i = 0; i < 60; i++) {
          const k = (id + i) % seeds.length;
          const t0 = performance.now();
          const res = await postJson(`${s.base}/v2/models/mnist/infer`, {
            inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(inputs[k]) }],
          }).catch(() => ({ status: 0, body: undefined }));
          latencies.push(performance.now() - t0);
          if (res.status !== 200) {
            failed++;
            continue;
          }
          versions.add(res.body.model_version);
          if (JSON.stringify(res.body.outputs[0].data) !== JSON.stringify(expected[modelOf(Number(res.body.model_version))][k])) wrong++;
        }
      };
      const swaps: { buildMs: number; warmMs: number }[] = [];
      const swapper = async () => {
        for (let v = 2; v <= 6; v++) {
          await new Promise((r) => setTimeout(r, 20));
          swaps.push(await s.engine.swap(models[modelOf(v)], { version: v }));
        }
      };
      await Promise.all([...Array.from({ length: 8 }, (_, id) => client(id)), swapper()]);

      expect(failed).toBe(0);
      expect(wrong).toBe(0);
      expect(swaps).toHaveLength(5);
      expect(versions.size).toBeGreaterThanOrEqual(3);
      latencies.sort((a, b) => a - b);
      const q = (p: number) => latencies[Math.floor(p * (latencies.length - 1))].toFixed(2);
      console.log(`HTTP infer latency ms (8 clients, batch 1): p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)}; versions seen ${[...versions].join(',')}`);
    } finally {
      await s.stop();
    }
  });
});

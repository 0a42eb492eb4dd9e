// InferenceEngine against real ONNX Runtime: request validation, outputs equal to a direct
// session run, hot swaps under concurrent load, failed swaps and draining close().
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/common/index.js';
import { serializeModel } from '../../src/onnx/index.js';
import { InferenceEngine, RequestError, createSession, ort, type InferInput } from '../../src/runtime/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { randomInputs, smallCnn } from '../helpers/models.js';
import { paths } from '../helpers/paths.js';

const PIXELS = 28 * 28;
const modelA = serializeModel(smallCnn(13, 1));
const modelB = serializeModel(smallCnn(13, 2));

function request(batch: number, seed: number): Record<string, InferInput> {
  return { input: { datatype: 'FP32', shape: [batch, 1, 28, 28], data: randomInputs(batch, PIXELS, seed) } };
}

async function directRun(model: Uint8Array, data: Float32Array, batch: number): Promise<Float32Array> {
  const session = await createSession(model);
  try {
    const out = await session.run({ input: new ort.Tensor('float32', data, [batch, 1, 28, 28]) });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('InferenceEngine', () => {
  let engine: InferenceEngine;
  beforeAll(async () => {
    engine = await InferenceEngine.create(modelA, { name: 'mnist', version: 1, label: 'fp32', maxBatch: 8 });
  });
  afterAll(async () => {
    await engine.close();
  });

  it('reads the interface from the graph', () => {
    expect(engine.inputsMeta).toEqual([{ name: 'input', datatype: 'FP32', dims: [null, 1, 28, 28] }]);
    expect(engine.outputsMeta).toEqual([{ name: 'logits', datatype: 'FP32', dims: [null, 10] }]);
    expect(engine.activeVersion).toBe(1);
    expect(engine.label).toBe('fp32');
    expect(engine.ready).toBe(true);
  });

  it('returns what a direct ORT run returns', async () => {
    const req = request(3, 7);
    const res = await engine.infer(req);
    expect(res.version).toBe(1);
    expect(res.outputs.logits.datatype).toBe('FP32');
    expect(res.outputs.logits.shape).toEqual([3, 10]);
    expect(Array.from(res.outputs.logits.data as Float32Array)).toEqual(Array.from(await directRun(modelA, req.input.data, 3)));
    expect(res.latencyMs).toBeGreaterThan(0);
  });

  const bad: [string, () => Record<string, InferInput>, RegExp][] = [
    ['unknown input', () => ({ ...request(1, 1), extra: request(1, 1).input }), /unknown input 'extra'/],
    ['missing input', () => ({}), /missing input 'input'/],
    ['wrong datatype', () => ({ input: { ...request(1, 1).input, datatype: 'FP64' } }), /datatype FP64, expected FP32/],
    ['wrong rank', () => ({ input: { datatype: 'FP32', shape: [1, 28, 28], data: new Float32Array(PIXELS) } }), /rank 3, expected 4/],
    ['fixed dim mismatch', () => ({ input: { datatype: 'FP32', shape: [1, 1, 28, 27], data: new Float32Array(28 * 27) } }), /dim 3 = 27, expected 28/],
    ['zero dim', () => ({ input: { datatype: 'FP32', shape: [0, 1, 28, 28], data: new Float32Array(0) } }), /dim 0 = 0, expected a positive integer/],
    ['data length', () => ({ input: { datatype: 'FP32', shape: [2, 1, 28, 28], data: new Float32Array(PIXELS) } }), /784 values, shape \[2,1,28,28\] needs 1568/],
    ['batch over the limit', () => request(9, 1), /batch 9, more than the limit 8/],
  ];
  it.each(bad)('rejects %s with a RequestError before ORT', async (_case, make, message) => {
    const before = engine.stats();
    const err = await engine.infer(make()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).code).toBe('request');
    expect((err as RequestError).status).toBe(400);
    expect((err as Error).message).toMatch(message);
    // Nothing ran: neither an inference nor an ORT error was counted.
    expect(engine.stats()).toEqual(before);
  });
});

describe('InferenceEngine.swap', () => {
  it('serves every request from the version it reports while swaps run under load', async () => {
    const engine = await InferenceEngine.create(modelA, { version: 1 });
    const models = [modelA, modelB];
    // Precomputed expectations per (model, input seed), from direct sessions.
    const seeds = [11, 12, 13, 14];
    const expected = await Promise.all(models.map((m) => Promise.all(seeds.map((s) => directRun(m, randomInputs(1, PIXELS, s), 1)))));
    const versionToModel = (v: number) => (v % 2 === 1 ? 0 : 1);

    let failures = 0;
    let mismatches = 0;
    const versionsSeen = new Set<number>();
    let done = false;
    const client = async (id: number) => {
      for (let i = 0; i < 200; i++) {
        const k = (id + i) % seeds.length;
        try {
          const res = await engine.infer(request(1, seeds[k]));
          versionsSeen.add(res.version);
          const want = expected[versionToModel(res.version)][k];
          if (!equal(res.outputs.logits.data as Float32Array, want)) mismatches++;
        } catch {
          failures++;
        }
      }
    };
    const swaps: { buildMs: number; warmMs: number }[] = [];
    const swapper = async () => {
      for (let v = 2; v <= 7; v++) {
        await new Promise((r) => setTimeout(r, 15));
        swaps.push(await engine.swap(models[versionToModel(v)], { version: v, label: `v${v}` }));
        if (done) break;
      }
    };
    await Promise.all([...Array.from({ length: 8 }, (_, id) => client(id)), swapper()]).finally(() => (done = true));

    expect(failures).toBe(0);
    expect(mismatches).toBe(0);
    expect(swaps.length).toBeGreaterThanOrEqual(5);
    expect(versionsSeen.size).toBeGreaterThanOrEqual(3);
    expect(engine.stats()).toMatchObject({ inferences: 1600, errors: 0, inFlight: 0, swaps: swaps.length });
    // Every swapped-out session was released once its requests finished.
    await new Promise((r) => setTimeout(r, 10));
    expect(engine.stats().retiredSessions).toBe(0);
    const ms = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
    console.log(`swap build ms: ${ms(swaps.map((s) => s.buildMs))}; warm ms: ${ms(swaps.map((s) => s.warmMs))}`);
    await engine.close();
  });

  it('keeps the old model serving when the new one does not load', async () => {
    const engine = await InferenceEngine.create(modelA, { version: 1 });
    const garbage = Uint8Array.from({ length: 500 }, (_, i) => (i * 37) & 0xff);
    await expect(engine.swap(garbage, { version: 2 })).rejects.toBeInstanceOf(ModelError);
    expect(engine.activeVersion).toBe(1);
    const res = await engine.infer(request(1, 5));
    expect(res.version).toBe(1);
    expect(equal(res.outputs.logits.data as Float32Array, await directRun(modelA, randomInputs(1, PIXELS, 5), 1))).toBe(true);
    // A later good swap still works: the failed one did not jam the queue.
    await engine.swap(modelB, { version: 3 });
    expect(engine.activeVersion).toBe(3);
    await engine.close();
  });

  it('refuses a model whose inputs differ from the served ones', async () => {
    const engine = await InferenceEngine.create(modelA, { version: 1 });
    const { branchyMlp } = await import('../helpers/models.js');
    await expect(engine.swap(branchyMlp(), { version: 2 })).rejects.toThrow(/does not fit the served interface/);
    expect(engine.activeVersion).toBe(1);
    await engine.close();
  });

  it('prepareSwap: the old model serves until commit; discard releases the new one; later swaps wait for either', async () => {
    const engine = await InferenceEngine.create(modelA, { version: 1 });
    const expectedB = await directRun(modelB, randomInputs(1, PIXELS, 6), 1);
    const discarded = await engine.prepareSwap(modelB, 'model B');
    expect((await engine.infer(request(1, 6))).version).toBe(1);
    await discarded.discard();
    expect(() => discarded.commit({ version: 2 })).toThrow(/once/);
    expect(engine.activeVersion).toBe(1);

    const prepared = await engine.prepareSwap(modelB, 'model B');
    let later = false;
    const queued = engine.swap(modelA, { version: 3 }).then(() => (later = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(later).toBe(false);
    prepared.commit({ version: 2, label: 'B' });
    const res = await engine.infer(request(1, 6));
    expect(res.version).toBe(2);
    expect(equal(res.outputs.logits.data as Float32Array, expectedB)).toBe(true);
    await queued;
    expect(engine.activeVersion).toBe(3);
    expect(engine.stats().swaps).toBe(2);
    await engine.close();
  });

  it('runs concurrent swaps one at a time, in call order', async () => {
    const engine = await InferenceEngine.create(modelA, { version: 1 });
    const order: number[] = [];
    await Promise.all([2, 3, 4].map((v) => engine.swap(v % 2 ? modelA : modelB, { version: v }).then(() => order.push(v))));
    expect(order).toEqual([2, 3, 4]);
    expect(engine.activeVersion).toBe(4);
    await engine.close();
  });

  it('close() waits for requests in flight, then refuses new ones', async () => {
    const engine = await InferenceEngine.create(modelA, { version: 1, maxBatch: 64 });
    const running = Array.from({ length: 4 }, (_, i) => engine.infer(request(64, i)));
    expect(engine.stats().inFlight).toBe(4);
    let closed = false;
    const closing = engine.close().then(() => (closed = true));
    expect(engine.ready).toBe(false);
    const results = await Promise.all(running);
    expect(results.every((r) => r.outputs.logits.shape[0] === 64)).toBe(true);
    await closing;
    expect(closed).toBe(true);
    expect(engine.stats().inFlight).toBe(0);
    await expect(engine.infer(request(1, 1))).rejects.toThrow(/closed/);
  });
});

// The bundled MNIST CNN has the same interface as smallCnn(); CALIBD_MNIST_MODEL points at
// another copy until the file lands in this branch.
const mnistPath = [process.env.CALIBD_MNIST_MODEL, paths.mnistModel].find((p): p is string => !!p && existsSync(p));

describe.skipIf(!mnistPath)('InferenceEngine with the bundled MNIST CNN', () => {
  it('swaps from a built model to the file and serves what ORT computes', async () => {
    const bytes = new Uint8Array(readFileSync(mnistPath!));
    const engine = await InferenceEngine.create(modelA, { version: 1 });
    const { buildMs, warmMs } = await engine.swap(bytes, { version: 2, label: 'mnist-cnn.onnx' });
    expect(buildMs + warmMs).toBeLessThan(5000);
    const req = request(4, 9);
    const res = await engine.infer(req);
    expect(res.version).toBe(2);
    expect(equal(res.outputs.logits.data as Float32Array, await directRun(bytes, req.input.data, 4))).toBe(true);
    await engine.close();
  });
});

function equal(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// Safe by default: admin routes and metrics need the token when one is set, inference stays
// open, and a non-loopback bind without a token is refused before anything listens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionError } from '../../src/common/index.js';
import { createApiServer, InsecureBindError, isLoopback } from '../../src/api/index.js';
import { InferenceEngine } from '../../src/runtime/index.js';
import { apiOptions, inferBody, modelA, postJson, startServer, VersionListAdmin, type Started } from './helpers.js';

describe('bearer token', () => {
  let s: Started;
  beforeAll(async () => {
    s = await startServer({ token: 's3cret' });
  });
  afterAll(async () => {
    await s.stop();
  });

  const adminGets = ['/v2/calibd/status', '/v2/calibd/calibrations', '/metrics'];
  it.each(adminGets)('GET %s is 401 without the token, 200 with it', async (path) => {
    for (const auth of [undefined, 'Bearer wrong', 'Basic s3cret', 'Bearer ']) {
      const res = await fetch(`${s.base}${path}`, { headers: auth ? { authorization: auth } : {} });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: expect.stringMatching(/Authorization: Bearer/), code: 'unauthorized' });
    }
    expect((await fetch(`${s.base}${path}`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
  });

  it('guards admin POSTs before running them', async () => {
    expect((await postJson(`${s.base}/v2/calibd/recalibrate`, {})).status).toBe(401);
    expect((await postJson(`${s.base}/v2/calibd/rollback`, { version: 1 })).status).toBe(401);
    expect(s.admin.calls).toEqual([]);
    const ok = await postJson(`${s.base}/v2/calibd/rollback`, { version: 1 }, { authorization: 'Bearer s3cret' });
    expect(ok.status).toBe(200);
  });

  it('leaves inference and health open', async () => {
    expect((await postJson(`${s.base}/v2/models/mnist/infer`, inferBody(1, 1).body)).status).toBe(200);
    expect((await fetch(`${s.base}/v2/health/ready`)).status).toBe(200);
    expect((await fetch(`${s.base}/v2/models/mnist`)).status).toBe(200);
  });
});

describe('bind address', () => {
  it('recognises loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '128.0.0.1', '::ffff:10.0.0.1']) expect(isLoopback(h)).toBe(false);
  });

  it('refuses a non-loopback bind without a token, and allows it with one', async () => {
    const engine = await InferenceEngine.create(modelA, { version: 1 });
    const deps = { engine, admin: new VersionListAdmin(engine), modelName: 'mnist' };
    try {
      const make = () => createApiServer(deps, apiOptions({ host: '0.0.0.0' }));
      expect(make).toThrow(InsecureBindError);
      expect(make).toThrow(OptionError);
      expect(make).toThrow(/refusing to listen on 0.0.0.0 without an API token/);
      const server = createApiServer(deps, apiOptions({ host: '0.0.0.0', token: 't' }));
      const { port } = await server.listen();
      expect(port).toBeGreaterThan(0);
      await server.close();
    } finally {
      await engine.close();
    }
  });
});

describe('logging', () => {
  it('logs an unexpected failure in full through the given pino logger but tells the client nothing', async () => {
    const { pino } = await import('pino');
    const { Writable } = await import('node:stream');
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const s = await startServer({ logger: pino({ level: 'warn' }, sink) });
    try {
      s.admin.failNext = new TypeError('disk on fire');
      const res = await postJson(`${s.base}/v2/calibd/recalibrate`, {});
      expect(res).toMatchObject({ status: 500, body: { error: 'internal server error', code: 'internal' } });
      expect(lines.some((l) => l.includes('disk on fire'))).toBe(true);
    } finally {
      await s.stop();
    }
  });
});

// `calibd serve` failing the documented ways: bad HTTP requests get their status and an
// {"error": ...} body; a missing model or an invalid config stops start-up with exit code 2
// and one line naming the problem; a corrupt database is moved aside and the daemon serves.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { startDaemon, writeConfig, type Daemon } from '../helpers/daemon.js';
import { repoRoot } from '../helpers/paths.js';
import { logEvents, withDb } from '../helpers/serve.js';

const bin = join(repoRoot, 'bin', 'calibd.js');
function serve(configPath: string) {
  const r = spawnSync(process.execPath, [bin, 'serve', '--config', configPath], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

describe('calibd serve: start-up errors', () => {
  it('a missing model file: exit 2, one line naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-serve-err-'));
    const missing = join(dir, 'no-such-model.onnx');
    const r = serve(writeConfig(dir, { model: missing }));
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(missing);
    expect(r.stdout).toBe('');
  });

  it('a folder named calibd.db: exit 2, one line naming it and what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-serve-err-'));
    const dbPath = join(dir, 'calibd.db');
    mkdirSync(dbPath);
    const r = serve(writeConfig(dir));
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toEqual([`calibd: the state database ${dbPath} is not a file: move it out of the way (calibd creates calibd.db itself), or point stateDir at another folder`]);
    expect(r.stdout).toBe('');
  });

  it('an invalid config: exit 2, one line naming the key and the allowed values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-serve-err-'));
    const r = serve(writeConfig(dir, { recalibration: { method: 'magic' } }));
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('recalibration.method');
    expect(lines[0]).toContain('magic');
    for (const m of ['minmax', 'percentile', 'entropy', 'mse']) expect(lines[0]).toContain(m);
    // Nothing was created: the state folder holds only the config.
    expect(readdirSync(dir)).toEqual(['config.yaml']);
  });

  it('binding beyond loopback without a token: exit 2 at once, before any calibration or file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-serve-err-'));
    const t0 = Date.now();
    const r = serve(writeConfig(dir, { http: { host: '0.0.0.0', port: 0 } }));
    // spawnSync's timeout would give a null code: the process has to end by itself.
    expect(r.code).toBe(2);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('0.0.0.0');
    expect(lines[0]).toContain('http.token');
    expect(readdirSync(dir)).toEqual(['config.yaml']);
  });
});

describe('calibd serve: a corrupt database, then bad requests', () => {
  it('moves garbage calibd.db aside, records an error event and serves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-serve-err-'));
    writeFileSync(join(dir, 'calibd.db'), randomBytes(64 * 1024));
    daemon = await startDaemon({ stateDir: dir, config: { http: { host: '127.0.0.1', port: 0, maxBodyBytes: 8 * 1024 } } });
    const d = daemon;
    const aside = readdirSync(dir).filter((f) => f.startsWith('calibd.db.corrupt-'));
    expect(aside).toHaveLength(1);
    const events = withDb(dir, (db) => db.prepare("SELECT data FROM events WHERE type = 'error'").pluck().all() as string[]);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.some((e) => e.includes(aside[0]))).toBe(true);
    expect(logEvents(d, 'error').some((l) => String(l.message).includes('corrupt'))).toBe(true);
    const s = await d.status();
    expect(s.serving).toBe('int8');
    expect(s.calibration.version).toBe(1);
  });

  it('answers bad requests with the documented status and an {"error"} body', async () => {
    const d = daemon!;
    const { train } = loadMnistSplit();
    const digit = Array.from(train.images.subarray(0, IMAGE_SIZE));
    const good = { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: digit }] };
    const send = async (path: string, body: string) => {
      const res = await fetch(d.url(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await res.text();
      return { status: res.status, text, json: JSON.parse(text) as { error?: unknown } };
    };
    const infer = '/v2/models/mnist-cnn/infer';
    const ok = await send(infer, JSON.stringify(good));
    expect(ok.status).toBe(200);

    const cases: [string, string, string, number, RegExp][] = [
      ['wrong model name', '/v2/models/resnet/infer', JSON.stringify(good), 404, /unknown model 'resnet'/],
      ['wrong shape', infer, JSON.stringify({ inputs: [{ ...good.inputs[0], shape: [1, 1, 28, 27], data: digit.slice(0, 756) }] }), 400, /dim 3 = 27, expected 28/],
      ['bad JSON', infer, '{"inputs": [', 400, /not valid JSON/],
      ['oversize body', infer, JSON.stringify({ inputs: [{ ...good.inputs[0], shape: [8, 1, 28, 28], data: Array(8).fill(digit).flat() }] }), 413, /maxBodyBytes/],
      ['wrong datatype', infer, JSON.stringify({ inputs: [{ ...good.inputs[0], datatype: 'INT32' }] }), 400, /datatype INT32, expected FP32/],
    ];
    const seen: string[] = [];
    for (const [what, path, body, status, message] of cases) {
      const r = await send(path, body);
      seen.push(`${what}: ${r.status} ${r.text}`);
      expect(r.status, what).toBe(status);
      expect(typeof r.json.error, what).toBe('string');
      expect(r.json.error, what).toMatch(message);
    }
    console.log(`documented errors:\n  ${seen.join('\n  ')}`);
    // The daemon is unharmed.
    expect((await send(infer, JSON.stringify(good))).status).toBe(200);
  });
});

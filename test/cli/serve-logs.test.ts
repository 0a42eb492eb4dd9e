// The daemon's logs are fit for a device: requests log at debug only, info holds lifecycle
// and calibration events with ISO times, `started` names what serves, a terminal gets
// human-readable lines, and a port already taken stops start-up with one line and exit 2
// before anything is written. All against the real `calibd serve`.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { startDaemon, waitFor, writeConfig, type Daemon } from '../helpers/daemon.js';
import { inferOne, logEvents, tenLogits } from '../helpers/serve.js';
import { repoRoot } from '../helpers/paths.js';

const bin = join(repoRoot, 'bin', 'calibd.js');
const { images } = loadMnistSplit().test;
const PINO_INFO = 30;
const PINO_DEBUG = 20;

let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

function records(lines: string[]): Record<string, any>[] {
  return lines.flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      return [];
    }
  });
}

/** Every number in a log record, however deep. */
function numbersIn(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (v && typeof v === 'object') return Object.values(v).flatMap(numbersIn);
  return [];
}

describe('calibd serve: logs', () => {
  it('200 inferences add no per-request info lines; times are ISO; started names the data-free bootstrap', async () => {
    daemon = await startDaemon();
    const before = daemon.logs.length;
    for (let i = 0; i < 200; i++) expect(tenLogits(await inferOne(daemon, images, i))).toBe(true);
    expect(await daemon.stop()).toBe(0);
    const during = records(daemon.logs.slice(before));
    const info = during.filter((r) => r.level === PINO_INFO);
    // Before: 403 info lines (two per request) and 79 KB. What is left is calibration
    // (the first samples trigger one) and the shutdown.
    expect(info.filter((r) => r.reqId !== undefined || r.req !== undefined)).toEqual([]);
    expect(info.length).toBeLessThanOrEqual(10);
    const bytes = daemon.logs.slice(before).reduce((n, l) => n + l.length + 1, 0);
    console.log(`200 inferences: ${info.length} info lines, ${bytes} bytes logged (before: 403 lines, 79197 bytes)`);
    for (const r of records(daemon.logs)) expect(r.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Figures are rounded for people (buildMs 3.6, not 3.64452300000994).
    const figures = records(daemon.logs).flatMap((r) => numbersIn(r));
    expect(figures.filter((x) => Math.round(x * 1e4) / 1e4 !== x)).toEqual([]);
    expect(logEvents(daemon, 'calibration.accepted')).toHaveLength(1);
    const [started] = logEvents(daemon, 'started');
    expect(started).toMatchObject({ serving: 'int8', version: 1, method: 'datafree', liveMethod: 'percentile' });
  }, 90_000);

  it('at debug, one line per request with its status and a time rounded to 0.1 ms', async () => {
    daemon = await startDaemon({ config: { log: { level: 'debug' } } });
    for (let i = 0; i < 5; i++) await inferOne(daemon, images, i);
    await waitFor('five request lines', async () => records(daemon!.logs).filter((r) => r.msg === 'request').length === 5, 5000);
    const lines = records(daemon.logs).filter((r) => r.msg === 'request');
    expect(lines.map((r) => [r.level, r.method, r.url, r.status])).toEqual(Array(5).fill([PINO_DEBUG, 'POST', '/v2/models/mnist-cnn/infer', 200]));
    for (const r of lines) expect(r.ms).toBe(Math.round(r.ms * 10) / 10);
  }, 60_000);

  it('on a terminal: human-readable lines, not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-logs-tty-'));
    const config = writeConfig(dir);
    // script(1) gives the daemon a pseudo-terminal as stdout, as an interactive shell would.
    const proc = spawn('script', ['-qfec', `${process.execPath} ${bin} serve --config ${config}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    try {
      await waitFor('calibd ready', async () => out.includes('calibd ready'), 30_000);
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
    const lines = out.split(/\r?\n/).filter((l) => l.includes(' INFO '));
    expect(lines.find((l) => l.includes(' started '))).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  started version=1 serving=int8 method=datafree liveMethod=percentile/);
    expect(out).not.toContain('{"level"');
  }, 60_000);

  it('a port already in use: one line naming it, exit 2, nothing written', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const dir = mkdtempSync(join(tmpdir(), 'calibd-logs-port-'));
      const r = spawnSync(process.execPath, [bin, 'serve', '--config', writeConfig(dir, { http: { host: '127.0.0.1', port } })], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toEqual([`calibd: http.port ${port} on 127.0.0.1 is already in use: stop the process using it, or set http.port (or CALIBD_HTTP_PORT) to a free port; 0 picks one`]);
      // No `started` event, no first-boot calibration, no database.
      expect(r.stdout).toBe('');
      expect(readdirSync(dir)).toEqual(['config.yaml']);
    } finally {
      holder.close();
    }
  }, 60_000);
});

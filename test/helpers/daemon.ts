// Runs the real daemon (`node bin/calibd.js serve`) as a child process on a temporary state
// folder and a free port, and talks to it over HTTP like any client would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { paths, repoRoot } from './paths.js';

export interface Daemon {
  proc: ChildProcess;
  port: number;
  stateDir: string;
  configPath: string;
  logs: string[];
  url(path: string): string;
  status(): Promise<any>;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

/** An mqtt config section for a device on a test broker (test/helpers/mosquitto.ts). */
export function mqttConfig(url: string, opts: { user?: string; passwordFile?: string; metricsIntervalSec?: number; queueMax?: number; protocolVersion?: 4 | 5; keepalive?: number } = {}): Record<string, unknown> {
  return {
    url,
    baseTopic: 'calibd',
    protocolVersion: opts.protocolVersion ?? 5,
    ...(opts.user ? { username: opts.user } : {}),
    ...(opts.passwordFile ? { passwordFile: opts.passwordFile } : {}),
    keepalive: opts.keepalive ?? 5,
    metricsIntervalSec: opts.metricsIntervalSec ?? 1,
    queueMax: opts.queueMax ?? 50,
  };
}

export function writeConfig(stateDir: string, overrides: Record<string, unknown> = {}): string {
  const config = {
    model: paths.mnistModel,
    deviceId: 'test-device',
    stateDir,
    http: { host: '127.0.0.1', port: 0 },
    sampling: { oneIn: 1, maxRows: 3000 },
    recalibration: { everyInferences: 0, method: 'percentile', minSamples: 100, validationSlice: 100, driftThreshold: 0.2, forgetting: 0.98 },
    firstBoot: 'datafree',
    log: { level: 'info' },
    ...overrides,
  };
  const path = join(stateDir, 'config.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

export async function startDaemon(opts: { stateDir?: string; config?: Record<string, unknown>; configPath?: string; env?: Record<string, string> } = {}): Promise<Daemon> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'calibd-daemon-'));
  const configPath = opts.configPath ?? writeConfig(stateDir, opts.config);
  const proc = spawn(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const logs: string[] = [];
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => { exited = code; resolve(code); }));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line);
          if (j.msg === 'calibd ready') resolve(j.port);
        } catch {
          // not JSON
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    void exit.then((code) => reject(new Error(`daemon exited (${code}) before ready:\n${logs.join('\n')}`)));
    setTimeout(() => reject(new Error(`daemon not ready in 30 s:\n${logs.join('\n')}`)), 30_000);
  });
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;
  return {
    proc, port, stateDir, configPath, logs, url,
    async status() {
      return (await fetch(url('/v2/calibd/status'))).json();
    },
    async stop() {
      if (exited !== undefined) return exited;
      proc.kill('SIGTERM');
      return exit;
    },
    async kill9() {
      if (exited !== undefined) return;
      proc.kill('SIGKILL');
      await exit;
    },
  };
}

/** KServe v2 JSON inference of one batch; returns argmax per row, or throws on non-200. */
export async function inferDigits(d: Daemon, images: Float32Array, count: number, model = 'mnist-cnn'): Promise<number[]> {
  const res = await fetch(d.url(`/v2/models/${model}/infer`), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32', data: Array.from(images.subarray(0, count * 784)) }] }),
  });
  if (res.status !== 200) throw new Error(`infer: HTTP ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { outputs: { data: number[]; shape: number[] }[] };
  const out = body.outputs[0];
  const preds: number[] = [];
  for (let r = 0; r < count; r++) {
    const row = out.data.slice(r * 10, r * 10 + 10);
    preds.push(row.indexOf(Math.max(...row)));
  }
  return preds;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Runs the real daemon (`node bin/calibd.js serve`) as a child process on a temporary state
// folder and a free port, and talks to it over HTTP like any client would.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { spawnDaemon } from '../../scripts/lib/daemon-process.js';
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
  const d = await spawnDaemon(repoRoot, configPath, { env: opts.env, readyTimeoutMs: 30_000 });
  return {
    ...d,
    stateDir,
    configPath,
    async status() {
      const token = opts.env?.CALIBD_HTTP_TOKEN;
      return (await fetch(d.url('/v2/calibd/status'), { headers: token ? { authorization: `Bearer ${token}` } : {} })).json();
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

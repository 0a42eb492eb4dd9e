// Small helpers for the `calibd serve` tests: raw inference that reports instead of
// throwing, admin calls, load from several concurrent clients, and read-only looks at the
// daemon's SQLite file.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import type { Daemon } from './daemon.js';

export interface InferReply {
  status: number;
  body: any;
  ms: number;
}

/** One digit, KServe v2 JSON; never throws on HTTP errors (network errors are returned as status 0). */
export async function inferOne(d: Daemon, images: Float32Array, index: number): Promise<InferReply> {
  const data = Array.from(images.subarray(index * IMAGE_SIZE, (index + 1) * IMAGE_SIZE));
  const t0 = performance.now();
  try {
    const res = await fetch(d.url('/v2/models/mnist-cnn/infer'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data }] }),
    });
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: res.status, body, ms: performance.now() - t0 };
  } catch (err) {
    return { status: 0, body: String(err), ms: performance.now() - t0 };
  }
}

/** True when a reply is a 200 carrying one output of 10 finite logits. */
export function tenLogits(r: InferReply): boolean {
  const out = r.body?.outputs?.[0];
  return r.status === 200 && Array.isArray(out?.data) && out.data.length === 10 && out.data.every((v: unknown) => typeof v === 'number' && Number.isFinite(v));
}

export async function post(d: Daemon, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(d.url(path), {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

export async function calibrations(d: Daemon): Promise<any[]> {
  return ((await (await fetch(d.url('/v2/calibd/calibrations'))).json()) as { calibrations: any[] }).calibrations;
}

/** Sends digits 0..n-1 (wrapping over the set) from `clients` concurrent clients; throws on the first failure. */
export async function sendDigits(d: Daemon, images: Float32Array, n: number, clients = 4, offset = 0): Promise<void> {
  const count = images.length / IMAGE_SIZE;
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < n; i = next++) {
        const r = await inferOne(d, images, (offset + i) % count);
        if (!tenLogits(r)) throw new Error(`infer ${i}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      }
    }),
  );
}

/** Opens the daemon's database read-only (works while it runs: WAL readers do not block it). */
export function withDb<T>(stateDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(stateDir, 'calibd.db'), { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The JSON log lines the daemon wrote whose msg or event is `what`. */
export function logEvents(d: Daemon, what: string): any[] {
  const out: any[] = [];
  for (const line of d.logs) {
    try {
      const j = JSON.parse(line);
      if (j.msg === what || j.event === what) out.push(j);
    } catch {
      // stderr or a partial line
    }
  }
  return out;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for the daemon process to end by itself; resolves to its exit code (null when a signal killed it). */
export function waitExit(d: Daemon, timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const p = d.proc;
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`daemon still running after ${timeoutMs} ms`)), timeoutMs);
    p.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

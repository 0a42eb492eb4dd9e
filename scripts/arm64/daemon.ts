// npx tsx scripts/arm64/daemon.ts PROFILE WORKDIR
// The daemon end to end on arm64: `calibd serve` runs under emulation (scripts/arm64/node.sh,
// from .cache/arm64/app, so its SQLite state goes through the cross-built better-sqlite3),
// and this script, native, is its client over HTTP (KServe v2 JSON):
//   serve → sample → recalibrate → swap → kill -9 → restart on the same calibration version.
// Each step prints what it measured; any failed check exits 1.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { IMAGE_SIZE, loadMnistSplit } from '../lib/mnist-data.js';

const [profile, workArg] = process.argv.slice(2);
if (!profile || !workArg) {
  console.error('usage: daemon.ts pi4|pi5 WORKDIR');
  process.exit(2);
}
const repo = resolve(import.meta.dirname, '..', '..');
const cache = process.env.CALIBD_ARM64_CACHE ?? join(repo, '.cache', 'arm64');
const app = join(cache, 'app');
const work = mkdtempSync(join(resolve(workArg), `daemon-${profile}-`));
const stateDir = join(work, 'state');
const configPath = join(work, 'config.json');
writeFileSync(configPath, JSON.stringify({
  model: join(repo, 'models', 'mnist-cnn.onnx'),
  deviceId: `arm64-${profile}`,
  stateDir,
  http: { host: '127.0.0.1', port: 0 },
  sampling: { oneIn: 1, maxRows: 1000 },
  // Nothing recalibrates on its own: the client asks, so every version is accounted for.
  recalibration: { everyInferences: 0, method: 'minmax', minSamples: 20, validationSlice: 10, gateMargin: 100 },
  firstBoot: 'datafree',
  log: { level: 'info' },
}, null, 2));

const { test } = loadMnistSplit();
let failed = 0;
function check(ok: boolean, what: string): void {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failed++;
}

interface Daemon { proc: ChildProcess; port: number; logs: string[]; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; readyS: number }

async function start(): Promise<Daemon> {
  const t0 = Date.now();
  const proc = spawn(join(repo, 'scripts', 'arm64', 'node.sh'), [profile, join(app, 'bin', 'calibd.js'), 'serve', '--config', configPath], {
    cwd: app, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const port = await new Promise<number>((res, rej) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const j = JSON.parse(line) as { msg?: string; port?: number };
        if (j.msg === 'calibd ready' && j.port) res(j.port);
      } catch { /* not JSON */ }
    });
    proc.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    void exit.then(({ code, signal }) => rej(new Error(`the arm64 daemon exited (${code ?? signal}) before it was ready:\n${logs.slice(-30).join('\n')}`)));
    setTimeout(() => rej(new Error(`the arm64 daemon was not ready within 300 s:\n${logs.slice(-30).join('\n')}`)), 300_000).unref();
  });
  return { proc, port, logs, exit, readyS: (Date.now() - t0) / 1000 };
}

const url = (d: Daemon, p: string) => `http://127.0.0.1:${d.port}${p}`;
async function status(d: Daemon): Promise<any> {
  return (await fetch(url(d, '/v2/calibd/status'))).json();
}
async function inferDigit(d: Daemon, i: number): Promise<{ status: number; version: string; logits: number[] }> {
  const res = await fetch(url(d, '/v2/models/mnist-cnn/infer'), {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(test.images.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE)) }] }),
  });
  const body: any = await res.json();
  return { status: res.status, version: String(body.model_version), logits: body.outputs?.[0]?.data ?? [] };
}
const tenFinite = (l: number[]) => l.length === 10 && l.every((v) => Number.isFinite(v));
const argmax = (l: number[]) => l.indexOf(Math.max(...l));
async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 120_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
/** The shared objects the (qemu) process has mapped: the guest's libraries show up by path. */
function mapped(pid: number, pattern: RegExp): string[] {
  const lines = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  return [...new Set(lines.map((l) => l.split(/\s+/).slice(5).join(' ')).filter((p) => pattern.test(p)))];
}
function dbState(): { active: number[]; samples: number } {
  // Read natively (x64 better-sqlite3) the file the arm64 daemon wrote.
  const db = new Database(join(stateDir, 'calibd.db'), { readonly: true, fileMustExist: true });
  try {
    return {
      active: db.prepare("SELECT version FROM profiles WHERE state = 'active'").pluck().all() as number[],
      samples: db.prepare('SELECT count(*) FROM samples').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

let d: Daemon | undefined;
try {
  console.log(`daemon on arm64 (${profile}): calibd serve under emulation, MNIST, native HTTP client; state in ${stateDir}`);
  d = await start();
  const s0 = await status(d);
  check(s0.serving === 'int8' && s0.calibration.version >= 1, `serve: ready after ${d.readyS.toFixed(0)} s (emulated), serving ${s0.serving} v${s0.calibration.version} (${s0.calibration.method}, data-free first boot)`);
  const sqlite = mapped(d.proc.pid!, /better_sqlite3\.node$/);
  check(sqlite.length === 1 && sqlite[0].startsWith(cache), `SQLite: the process maps ${sqlite.map((p) => p.replace(repo + '/', '')).join(', ') || 'no better_sqlite3.node'} (the cross-built one)`);
  const ort = mapped(d.proc.pid!, /libonnxruntime\.so/);
  check(ort.length >= 1 && ort.every((p) => p.includes('/linux/arm64/')), `ORT: the process maps ${ort.map((p) => p.replace(/.*node_modules\//, '')).join(', ') || 'no libonnxruntime.so'}`);
  const v1 = String(s0.calibration.version);
  const first = await inferDigit(d, 0);
  check(first.status === 200 && tenFinite(first.logits) && first.version === v1, `infer: HTTP ${first.status}, ${first.logits.length} finite logits, model_version ${first.version}, predicts ${argmax(first.logits)} (label ${test.labels[0]})`);

  const n = 40;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const r = await inferDigit(d, i);
    if (r.status !== 200 || !tenFinite(r.logits)) throw new Error(`infer ${i}: HTTP ${r.status}`);
    if (argmax(r.logits) === test.labels[i]) correct++;
  }
  const s1 = await waitFor('samples stored', async () => { const s = await status(d!); return s.buffer.rows >= n + 1 ? s : undefined; });
  check(s1.buffer.rows >= n + 1, `sample: ${n} more digits served (${correct}/${n} correct on data-free INT8), ${s1.buffer.rows} samples in the arm64 SQLite buffer`);

  // Enough samples after a data-free boot: the daemon calibrates from them by itself.
  const s2a = await waitFor('the first calibration from live samples', async () => { const s = await status(d!); return s.calibration.version > Number(v1) && !s.calibration.running ? s : undefined; });
  check(s2a.serving === 'int8' && s2a.calibration.method === 'minmax', `first data: v${s2a.calibration.version} ${s2a.calibration.method} (trigger ${s2a.calibration.figures?.trigger ?? '?'}) replaced the data-free v${v1} by itself (minSamples 20; ${s2a.buffer.rows} stored)`);

  const t0 = Date.now();
  const rec = await fetch(url(d, '/v2/calibd/recalibrate'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'percentile' }) });
  const rb: any = await rec.json();
  const v2 = Number(rb.version);
  check(rec.status === 200 && rb.state === 'accepted' && v2 > s2a.calibration.version, `recalibrate: HTTP ${rec.status}, v${rb.version} ${rb.state} (percentile from the buffer; vs FP32 on held-out samples: agreement ${rb.figures?.agreement ?? '?'}%, SQNR ${rb.figures?.sqnrDb ?? '?'} dB) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  const swapped = await inferDigit(d, 1);
  const s2 = await status(d);
  check(swapped.status === 200 && tenFinite(swapped.logits) && swapped.version === String(v2) && s2.calibration.version === v2, `swap: the next inference answers from v${swapped.version}, status says v${s2.calibration.version}`);

  await new Promise((r) => setTimeout(r, 1500)); // the last samples reach the database
  const before = await status(d);
  const db1 = dbState();
  check(db1.active.length === 1 && db1.active[0] === v2, `state: calibd.db written on arm64 opens on x64; active version ${JSON.stringify(db1.active)}, ${db1.samples} samples`);

  d.proc.kill('SIGKILL');
  const ex = await d.exit;
  check(ex.signal === 'SIGKILL', `kill -9: the daemon died by ${ex.signal ?? `exit ${ex.code}`}`);

  d = await start();
  const s3 = await status(d);
  const again = await inferDigit(d, 2);
  const started = d.logs.map((l) => { try { return JSON.parse(l); } catch { return {}; } }).find((j: any) => j.event === 'started');
  check(s3.serving === 'int8' && s3.calibration.version === v2 && again.version === String(v2) && tenFinite(again.logits),
    `restart: ready after ${d.readyS.toFixed(0)} s, serving ${s3.serving} v${s3.calibration.version} (was v${v2}), inference from v${again.version}${started ? `, 'started' event v${started.version}` : ''}`);
  check(s3.buffer.rows === before.buffer.rows, `restart: ${s3.buffer.rows} samples in the buffer (${before.buffer.rows} before the kill)`);

  d.proc.kill('SIGTERM');
  const ex2 = await d.exit;
  d = undefined;
  check(ex2.code === 0, `stop: SIGTERM → exit ${ex2.code ?? ex2.signal}`);
} catch (err) {
  console.log(`  FAIL ${err instanceof Error ? err.message : String(err)}`);
  failed++;
} finally {
  if (d) {
    d.proc.kill('SIGKILL');
    await d.exit;
  }
}
console.log(`daemon on arm64 (${profile}): ${failed ? `${failed} check(s) FAILED` : 'all checks passed'}`);
process.exit(failed ? 1 : 0);

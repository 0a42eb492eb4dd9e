// `npm run demo`: calibd on the bundled MNIST CNN under a drifting scene.
//
// A client streams real digits through the daemon's HTTP API with a drift schedule:
// dusk (dim digits) → gradual brightening → a lighter, noisy background. The daemon
// samples, notices the drift and recalibrates on its own. The demo prints a live table and
// writes report.html, accuracy.svg and accuracy.png into demo/out/ (ignored by git),
// plotting per window the accuracy of FP32, of calibd's online INT8, and of three static
// INT8 baselines, with every accepted or rejected calibration marked. The baselines are the
// honest ones a user could pick instead of calibd: a calibration from clean daytime digits,
// a data-free one from the known [0, 1] input range, and the first live (dusk) calibration.
//
// Options: --requests N (default 4800), --window N (default 160), --keep (keep demo/var),
// --publish (write the committed copies in demo/ instead of demo/out/).

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as ort from 'onnxruntime-node';
import { stringify } from 'yaml';
import { loadMnistSplit, IMAGE_SIZE, TRAIN_COUNT } from './lib/mnist-data.js';
import { writeNpy } from '../src/common/index.js';
import { drift, type DriftSpec } from './lib/drift.js';
import { spawnDaemon } from './lib/daemon-process.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const TOTAL = opt('requests', 4800);
const WINDOW = opt('window', 160);
const repoRoot = join(import.meta.dirname, '..');
// A run must not dirty the working tree: the committed copies change only when asked.
const outDir = args.includes('--publish') ? join(repoRoot, 'demo') : join(repoRoot, 'demo', 'out');
const stateDir = join(repoRoot, 'demo', 'var');
/** Clean daytime digits for the static baseline: the last training digits, which the stream never reaches. */
const CLEAN_CALIBRATION = 500;
const modelPath = join(repoRoot, 'models', 'mnist-cnn.onnx');

/** The static INT8 baselines calibd is compared with, in plot order. */
const BASELINES = [
  { key: 'clean', label: 'static, clean daytime data', color: '#d33', dash: '6,4' },
  { key: 'datafree', label: 'static data-free, [0,1] range', color: '#e90', dash: '2,3' },
  { key: 'dusk', label: 'static, first live (dusk) calibration', color: '#a4a', dash: '8,3,2,3' },
] as const;
type BaselineKey = (typeof BASELINES)[number]['key'];

/** The two offline baselines, made with the real CLI as a user would. */
function offlineBaselines(train: { images: Float32Array }): Record<'clean' | 'datafree', string> {
  const calibd = (...a: string[]) => execFileSync(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), ...a], { stdio: ['ignore', 'ignore', 'inherit'] });
  const data = join(stateDir, 'clean-daytime.npy');
  writeNpy(data, train.images.slice((TRAIN_COUNT - CLEAN_CALIBRATION) * IMAGE_SIZE), [CLEAN_CALIBRATION, 1, 28, 28]);
  const clean = join(stateDir, 'static-clean.onnx');
  const datafree = join(stateDir, 'static-datafree.onnx');
  calibd('calibrate', '--model', modelPath, '--data', data, '--method', 'percentile', '--out', clean);
  calibd('calibrate', '--model', modelPath, '--method', 'datafree', '--input-range', '0,1', '--out', datafree);
  return { clean, datafree };
}

/** The scene at request i: a fraction t of the run. */
function scene(t: number): DriftSpec & { phase: string } {
  if (t < 0.2) return { phase: 'dusk', severity: 1, gain: 0.5, background: 0, noise: 0 };
  if (t < 0.6) {
    const u = (t - 0.2) / 0.4; // gradual brightening
    return { phase: 'brightening', severity: 1, gain: 0.5 + 2.5 * u, background: 0.1 * u, noise: 0.05 * u };
  }
  return { phase: 'new background', severity: 1, gain: 3, background: 0.2, noise: 0.08 };
}

interface Window {
  index: number;
  phase: string;
  online: number;
  fp32: number;
  /** Accuracy of each static baseline (BASELINES order). */
  statics: number[];
  version: number;
  latencyMs: number;
}

async function predict(session: ort.InferenceSession, images: Float32Array, n: number): Promise<Int32Array> {
  const out = (await session.run({ input: new ort.Tensor('float32', images.subarray(0, n * IMAGE_SIZE), [n, 1, 28, 28]) })).logits.data as Float32Array;
  const preds = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (out[i * 10 + c] > out[i * 10 + best]) best = c;
    preds[i] = best;
  }
  return preds;
}

/** A free loopback port for the embedded broker, so the fleet watcher knows where to look. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function main() {
  rmSync(stateDir, { recursive: true, force: true });
  const mqttPort = await freePort();
  mkdirSync(stateDir, { recursive: true });
  const configPath = join(stateDir, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      model: modelPath,
      deviceId: 'demo-device',
      stateDir,
      http: { host: '127.0.0.1', port: 0 },
      sampling: { oneIn: 2, maxRows: 2000 },
      recalibration: { everyInferences: 0, method: 'percentile', minSamples: 100, validationSlice: 100, driftThreshold: 0.15, forgetting: 0.98 },
      firstBoot: 'datafree',
      mqtt: { url: 'embedded', embeddedPort: mqttPort, metricsIntervalSec: 5 },
      log: { level: 'info' },
    }),
  );
  const daemon = await spawnDaemon(repoRoot, configPath, { maxLogLines: 500 });
  // The fleet watcher: what an operator sees over MQTT (events as they happen).
  const fleetEvents: string[] = [];
  const watcher = spawn(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'fleet', 'watch', '--broker', `mqtt://127.0.0.1:${mqttPort}`, '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: watcher.stdout! }).on('line', (line) => {
    try {
      const m = JSON.parse(line) as { kind: string; payload: { type?: string; data?: Record<string, unknown> } };
      if (m.kind === 'events' && m.payload.type?.startsWith('calibration.') && m.payload.type !== 'calibration.started') {
        const d = m.payload.data ?? {};
        fleetEvents.push(`${m.payload.type.replace('calibration.', '')} v${d.version} (${d.trigger})`);
      }
    } catch {
      // not JSON
    }
  });
  const { train, test } = loadMnistSplit();
  // The stream: test digits first, then training digits, each drifted by its scene.
  const pool = new Float32Array((test.count + train.count) * IMAGE_SIZE);
  pool.set(test.images, 0);
  pool.set(train.images, test.count * IMAGE_SIZE);
  const poolLabels = new Uint8Array([...test.labels, ...train.labels]);
  const inputs = new Float32Array(TOTAL * IMAGE_SIZE);
  const labels = new Uint8Array(TOTAL);
  const phases: string[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const k = i % (test.count + train.count);
    const s = scene(i / TOTAL);
    inputs.set(drift(pool.subarray(k * IMAGE_SIZE, (k + 1) * IMAGE_SIZE), { ...s, seed: i + 1 }), i * IMAGE_SIZE);
    labels[i] = poolLabels[k];
    phases.push(s.phase);
  }

  const fp32 = await ort.InferenceSession.create(modelPath);
  const online = new Int32Array(TOTAL);
  const versionAt = new Int32Array(TOTAL);
  const latency: number[] = [];
  const answeredAt = new Float64Array(TOTAL);
  const windows: Window[] = [];
  const started = Date.now();
  console.log('window  phase           requests  FP32     calibd INT8  version  p50 ms  fleet events (MQTT)');
  for (let i = 0; i < TOTAL; i++) {
    const t0 = performance.now();
    const res = await fetch(daemon.url('/v2/models/mnist-cnn/infer'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(inputs.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE)) }] }),
    });
    if (res.status !== 200) throw new Error(`request ${i}: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { model_version?: string; outputs: { data: number[] }[] };
    latency.push(performance.now() - t0);
    answeredAt[i] = Date.now();
    const row = body.outputs[0].data;
    online[i] = row.indexOf(Math.max(...row));
    versionAt[i] = Number(body.model_version ?? 0);
    if ((i + 1) % WINDOW === 0) {
      const w = windows.length;
      const from = w * WINDOW;
      const fp = await predict(fp32, inputs.subarray(from * IMAGE_SIZE), WINDOW);
      let okOnline = 0;
      let okFp = 0;
      for (let j = 0; j < WINDOW; j++) {
        if (online[from + j] === labels[from + j]) okOnline++;
        if (fp[j] === labels[from + j]) okFp++;
      }
      const lat = latency.slice(-WINDOW).sort((a, b) => a - b);
      const win: Window = { index: w, phase: phases[from], online: okOnline / WINDOW, fp32: okFp / WINDOW, statics: BASELINES.map(() => NaN), version: versionAt[i], latencyMs: lat[Math.floor(lat.length / 2)] };
      windows.push(win);
      const heard = fleetEvents.splice(0).join(', ');
      console.log(`${String(w).padStart(6)}  ${win.phase.padEnd(14)}  ${String(i + 1).padStart(8)}  ${pct(win.fp32)}  ${pct(win.online)}       v${String(win.version).padEnd(6)} ${win.latencyMs.toFixed(2).padStart(6)}  ${heard}`);
    }
  }

  // Wait for a running calibration to finish, then read the history.
  for (let k = 0; k < 50; k++) {
    const s = (await (await fetch(daemon.url('/v2/calibd/status'))).json()) as { calibration: { running: boolean } };
    if (!s.calibration.running) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const history = ((await (await fetch(daemon.url('/v2/calibd/calibrations'))).json()) as { calibrations: Calibration[] }).calibrations.sort((a, b) => a.version - b.version);
  watcher.kill('SIGTERM');
  await daemon.stop();

  // The static curve: the first calibration made from live data, kept for the whole run.
  const db = new Database(join(stateDir, 'calibd.db'), { readonly: true });
  const rows = db.prepare("SELECT version, model_path, method, created_at FROM profiles WHERE method != 'datafree' AND model_path IS NOT NULL ORDER BY version").all() as { version: number; model_path: string }[];
  db.close();
  const firstLive = rows[0];
  const staticModels: Partial<Record<BaselineKey, string>> = { ...offlineBaselines(train), ...(firstLive ? { dusk: firstLive.model_path } : {}) };
  for (const [b, { key }] of BASELINES.entries()) {
    const path = staticModels[key];
    if (!path) continue;
    const s = await ort.InferenceSession.create(path);
    for (const w of windows) {
      const p = await predict(s, inputs.subarray(w.index * WINDOW * IMAGE_SIZE), WINDOW);
      let ok = 0;
      for (let j = 0; j < WINDOW; j++) if (p[j] === labels[w.index * WINDOW + j]) ok++;
      w.statics[b] = ok / WINDOW;
    }
    await s.release();
  }
  // Where each calibration happened, in requests: the first response after it was recorded.
  const marks = history
    .filter((h) => h.method !== 'datafree')
    .map((h) => {
      const created = Date.parse(h.createdAt);
      const at = answeredAt.findIndex((t) => t >= created);
      return { ...h, at: at < 0 ? TOTAL - 1 : at };
    });
  const seconds = (Date.now() - started) / 1000;
  const summary = summarise(windows, TOTAL, seconds);
  mkdirSync(outDir, { recursive: true });
  const svg = plot(windows, marks, firstLive?.version);
  writeFileSync(join(outDir, 'accuracy.svg'), svg);
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    writeFileSync(join(outDir, 'accuracy.png'), new Resvg(svg, { fitTo: { mode: 'width', value: 1200 }, background: 'white' }).render().asPng());
  } catch (err) {
    console.warn(`no PNG (${(err as Error).message}); the SVG is written`);
  }
  writeFileSync(join(outDir, 'report.html'), report(svg, summary, history, windows));
  console.log(`\n${summary.text}\nwrote report.html, accuracy.svg, accuracy.png in ${outDir}`);
  if (!args.includes('--keep')) rmSync(stateDir, { recursive: true, force: true });
}

interface Calibration {
  version: number;
  state: string;
  method: string;
  createdAt: string;
  figures?: Record<string, unknown>;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1).padStart(5)}%`;
}

/** Mean accuracy per curve over the whole run and over the last phase, said in one paragraph. */
function summarise(windows: Window[], total: number, seconds: number) {
  const mean = (ws: Window[], f: (w: Window) => number) => ws.reduce((a, w) => a + f(w), 0) / Math.max(1, ws.length);
  const last = windows.filter((w) => w.phase === 'new background');
  const both = (f: (w: Window) => number) => `${pct(mean(windows, f)).trim()} overall, ${pct(mean(last, f)).trim()} in the last phase`;
  const text =
    `${total} requests in ${seconds.toFixed(0)} s. FP32 ${both((w) => w.fp32)}; calibd online INT8 ${both((w) => w.online)}; ` +
    BASELINES.map((b, i) => `${b.label} ${both((w) => w.statics[i])}`).join('; ') +
    '.';
  return { text };
}

function plot(windows: Window[], marks: (Calibration & { at: number })[], staticVersion?: number): string {
  const W = 900, H = 440, L = 60, R = 20, T = 40, B = 70;
  const n = windows.length;
  const x = (i: number) => L + ((W - L - R) * (i + 0.5)) / n;
  const lo = 0.5;
  const y = (v: number) => T + (H - T - B) * (1 - (Math.max(lo, v) - lo) / (1 - lo));
  const line = (f: (w: Window) => number, color: string, dash = '') =>
    `<polyline fill="none" stroke="${color}" stroke-width="2.5" ${dash ? `stroke-dasharray="${dash}"` : ''} points="${windows
      .filter((w) => Number.isFinite(f(w)))
      .map((w) => `${x(w.index).toFixed(1)},${y(f(w)).toFixed(1)}`)
      .join(' ')}"/>`;
  const phaseBands = ['dusk', 'brightening', 'new background'].map((p, k) => {
    const ws = windows.filter((w) => w.phase === p);
    if (!ws.length) return '';
    const x0 = x(ws[0].index) - (W - L - R) / n / 2;
    const x1 = x(ws[ws.length - 1].index) + (W - L - R) / n / 2;
    return `<rect x="${x0}" y="${T}" width="${x1 - x0}" height="${H - T - B}" fill="${['#eef', '#ffe', '#fee'][k]}"/><text x="${(x0 + x1) / 2}" y="${T - 8}" text-anchor="middle" font-size="13" fill="#555">${p}</text>`;
  });
  const grid = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    .map((v) => `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="12">${(v * 100).toFixed(0)}%</text>`)
    .join('');
  const perWindow = windows.length ? windows.length : 1;
  const markAt = (m: { at: number }) => x(Math.min(perWindow - 1, Math.max(0, Math.floor(m.at / WINDOW))));
  const markers = marks
    .map((m) => {
      const mx = markAt(m);
      if (m.state === 'rejected') {
        return `<text x="${mx}" y="${H - B - 22}" text-anchor="middle" font-size="13" fill="#c22">×</text>`;
      }
      return `<line x1="${mx}" x2="${mx}" y1="${T}" y2="${H - B}" stroke="#2a2" stroke-dasharray="2,3"/><text x="${mx + 3}" y="${H - B - 6}" font-size="11" fill="#2a2">v${m.version}</text>`;
    })
    .join('');
  const rejected = marks.filter((m) => m.state === 'rejected').length;
  const entries: [string, string, string][] = [
    ['#333', 'FP32', ''],
    ['#17c', 'calibd online INT8', ''],
    ...BASELINES.map((b): [string, string, string] => [b.color, b.key === 'dusk' && staticVersion ? `${b.label} (v${staticVersion})` : b.label, b.dash]),
  ];
  // Two rows of legend under the plot.
  const legend = entries
    .map(([c, label, dash], k) => {
      const lx = L + 10 + (k % 3) * 280;
      const ly = H - 30 + Math.floor(k / 3) * 18;
      return `<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="3" ${dash ? `stroke-dasharray="${dash}"` : ''}/><text x="${lx + 36}" y="${ly + 4}" font-size="12">${label}</text>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif">
<rect width="${W}" height="${H}" fill="white"/>${phaseBands.join('')}${grid}
<text x="${L}" y="18" font-size="13" font-weight="bold">MNIST CNN accuracy per window of ${WINDOW} requests (green: accepted calibrations, red ×: ${rejected} rejected)</text>
${markers}${line((w) => w.fp32, '#333')}${BASELINES.map((b, i) => line((w) => w.statics[i], b.color, b.dash)).join('')}${line((w) => w.online, '#17c')}
<text x="${(W + L) / 2}" y="${H - B + 18}" text-anchor="middle" font-size="12">requests →</text>${legend}
</svg>`;
}

function report(svg: string, summary: { text: string }, history: Calibration[], windows: Window[]): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = history
    .map((h) => `<tr><td>v${h.version}</td><td>${h.state}</td><td>${h.method}</td><td>${esc(String(h.figures?.trigger ?? ''))}</td><td>${h.figures?.agreement ?? ''}</td><td>${h.figures?.activeAgreement ?? ''}</td><td>${esc(String(h.figures?.reason ?? ''))}</td></tr>`)
    .join('\n');
  const wrows = windows.map((w) => `<tr><td>${w.index}</td><td>${w.phase}</td><td>${pct(w.fp32)}</td>${w.statics.map((s) => `<td>${pct(s)}</td>`).join('')}<td>${pct(w.online)}</td><td>v${w.version}</td><td>${w.latencyMs.toFixed(2)}</td></tr>`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>calibd demo</title>
<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>
<h1>calibd under drift</h1><p>${esc(summary.text)}</p>${svg}
<h2>Calibrations</h2><table><tr><th>version</th><th>state</th><th>method</th><th>trigger</th><th>agreement %</th><th>active agreement %</th><th>gate</th></tr>${rows}</table>
<h2>Windows</h2><table><tr><th>#</th><th>phase</th><th>FP32</th>${BASELINES.map((b) => `<th>${b.label}</th>`).join('')}<th>calibd INT8</th><th>version</th><th>p50 ms</th></tr>${wrows}</table>
</body></html>`;
}

await main();

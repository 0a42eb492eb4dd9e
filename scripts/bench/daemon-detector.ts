// The daemon on a real model (`npm run bench -- --daemon-detector`): the PaddleOCR detector
// served with a default-like config (sampling 1 in 10, a recalibration every 200
// inferences, the mask-IoU gate) while one client sends 2,000 pages of real digits as
// fast as the daemon answers. Reports the share of sampled inputs dropped because the
// calibration worker fell behind, how long each recalibration took, and the daemon's RSS
// (from /proc) as the requests go on.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { digitPages } from '../lib/digit-pages.js';
import { spawnDaemon, type DaemonProcess } from '../lib/daemon-process.js';
import { ocrDetectorPath } from './ocr.js';
import type { BenchRow } from './row.js';

const SIDE = 320;
const REQUESTS = 2000;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** One page through the daemon's binary KServe v2 route; returns the HTTP status. */
export async function infer(d: DaemonProcess, page: Float32Array): Promise<number> {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3, SIDE, SIDE], datatype: 'FP32', parameters: { binary_data_size: page.byteLength } }] }));
  const res = await fetch(d.url('/v2/models/ch_PP-OCRv4_det_infer/infer'), {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, Buffer.from(page.buffer, page.byteOffset, page.byteLength)]),
  });
  await res.arrayBuffer();
  return res.status;
}

/**
 * The daemon as `CALIBD_MODEL=<detector> npm start` runs it: the shipped config/default.yaml
 * (recalibration every 2,000 inferences from at least 100 samples, the metric inferred,
 * the embedded broker), with only the model and the state folder given by environment.
 */
function asNpmStart(repoRoot: string, dir: string): { configPath: string; env: Record<string, string> } {
  return { configPath: join(repoRoot, 'config', 'default.yaml'), env: { CALIBD_MODEL: ocrDetectorPath(), CALIBD_STATE_DIR: join(dir, 'state') } };
}

export async function daemonDetectorBench(repoRoot: string, opts: { quick: boolean; defaultConfig?: boolean; log: (s: string) => void }): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-daemon-det-'));
  // The default config recalibrates at 2,000 inferences: go past it so that job finishes.
  const requests = opts.defaultConfig ? 2200 : opts.quick ? 600 : REQUESTS;
  const config = {
    model: ocrDetectorPath(),
    stateDir: join(dir, 'state'),
    http: { port: 0 },
    sampling: { oneIn: 10 },
    recalibration: { everyInferences: 200, minSamples: 20, validationSlice: 20 },
    validation: { metric: 'mask-iou:0.3' },
    mqtt: null,
  };
  writeFileSync(join(dir, 'calibd.yaml'), stringify(config));
  const run = opts.defaultConfig ? asNpmStart(repoRoot, dir) : { configPath: join(dir, 'calibd.yaml'), env: {} };
  const d = await spawnDaemon(repoRoot, run.configPath, { maxLogLines: 2000, env: run.env });
  const rows: BenchRow[] = [];
  try {
    const pages = digitPages({ count: 40, seed: 21, split: 'test', size: SIDE });
    const per = 3 * SIDE * SIDE;
    const rss: [number, number][] = [[0, rssMb(d.proc.pid!)]];
    let failed = 0;
    const t0 = performance.now();
    for (let i = 0; i < requests; i++) {
      if ((await infer(d, pages.data.subarray((i % 40) * per, ((i % 40) + 1) * per))) !== 200) failed++;
      if ((i + 1) % 200 === 0) {
        rss.push([i + 1, rssMb(d.proc.pid!)]);
        opts.log(`daemon detector: ${i + 1} requests, RSS ${rss[rss.length - 1][1].toFixed(0)} MB`);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    // Let a recalibration still running finish before reading the figures.
    for (let k = 0; k < 120; k++) {
      const s = (await (await fetch(d.url('/v2/calibd/status'))).json()) as { calibration: { running: boolean } };
      if (!s.calibration.running) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const status = (await (await fetch(d.url('/v2/calibd/status'))).json()) as { serving: string; counters: Record<string, number>; calibration: { version: number } };
    if (opts.defaultConfig) {
      rows.push({ section: 'daemon-detector', name: 'default config: calibration version after the run', value: status.calibration.version, unit: 'version', target: '>= 1', detail: `serving ${status.serving}` });
    }
    const list = (await (await fetch(d.url('/v2/calibd/calibrations'))).json()) as { calibrations?: { figures?: { durationMs?: number } }[] } | { figures?: { durationMs?: number } }[];
    const cals = Array.isArray(list) ? list : list.calibrations ?? [];
    const durations = cals.map((c) => c.figures?.durationMs).filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
    const c = status.counters;
    rows.push(
      { section: 'daemon-detector', name: `requests served (${requests}, ${(requests / seconds).toFixed(1)}/s), failed`, value: failed, unit: 'count', target: '0' },
      { section: 'daemon-detector', name: 'sampled inputs dropped / sampled', value: c.sampled ? c.dropped / c.sampled : 0, unit: 'ratio', target: '<= 0.01', detail: `${c.dropped} of ${c.sampled}; ${c.recalibrations} recalibrations, ${c.accepted} accepted, serving ${status.serving}` },
      { section: 'daemon-detector', name: 'recalibration from the buffer, longest', value: (durations[durations.length - 1] ?? NaN) / 1000, unit: 's', target: '<= 10', detail: `median ${((durations[Math.floor(durations.length / 2)] ?? NaN) / 1000).toFixed(1)} s over ${durations.length}` },
    );
    for (const [n, mb] of rss) rows.push({ section: 'daemon-detector', name: `daemon RSS after ${n} requests`, value: mb, unit: 'MB' });
    const settled = rss.find(([n]) => n >= requests / 2)![1];
    rows.push({ section: 'daemon-detector', name: `RSS at ${requests} / RSS at ${requests / 2} requests`, value: rss[rss.length - 1][1] / settled, unit: 'ratio', target: '~1.0' });
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

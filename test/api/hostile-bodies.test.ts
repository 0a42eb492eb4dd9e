// Bodies built to exhaust the daemon: megabytes of nested brackets or numbers just under
// http.maxBodyBytes, sent to the real `calibd serve`. Each must be refused without stalling
// other clients or building an object graph: a small client keeps timing its own requests
// meanwhile, and the daemon's peak RSS (VmHWM, reset before the attack) must stay near
// where it started. One daemon per case, so memory one attack left behind cannot hide the
// next one's peak.
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { PIXELS } from './helpers.js';

const MiB = 1024 * 1024;
const MAX_BODY = 8 * MiB;
const INFER = '/v2/models/mnist-cnn/infer';

describe('hostile bodies just under http.maxBodyBytes', () => {
  let d: Daemon | undefined;
  afterEach(async () => {
    await d?.stop();
    d = undefined;
  });
  const serve = async () => (d = await startDaemon({ config: { firstBoot: 'fp32', sampling: { oneIn: 10 }, http: { host: '127.0.0.1', port: 0, maxBodyBytes: MAX_BODY } } }));

  it('three 8 MiB bracket nests at once: 400 each, small-client p99 under 100 ms, RSS rise under 100 MB', async () => {
    const daemon = await serve();
    const attack = inferWithData((room) => `${'['.repeat(room / 2)}${']'.repeat(room / 2)}`);
    const { replies, latencies, rssRiseMB } = await underAttack(daemon, [attack, attack, attack]);
    const p99 = percentile(latencies, 0.99);
    console.log(`nested brackets ×3: small client p99 ${p99.toFixed(1)} ms over ${latencies.length} requests, peak RSS rise ${rssRiseMB.toFixed(0)} MB`);
    for (const r of replies) {
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('too-deep');
      expect(r.body.error).toMatch(/binary tensor extension/);
    }
    expect(p99).toBeLessThan(100);
    expect(rssRiseMB).toBeLessThan(100);
  });

  it('8 MiB of flat numbers, matching the declared shape or not: refused without a large RSS rise', async () => {
    const daemon = await serve();
    // Data that does not fit its declared shape is refused after counting, before decoding.
    const mismatched = inferWithData((room) => `[${flatZeros(room - 3)}]`);
    // Data that fits its declared shape is decoded into one Float32Array; the model refuses the shape.
    const count = (MAX_BODY - 200) / 2;
    const matched = Buffer.from(`{"inputs":[{"name":"input","shape":[${count}],"datatype":"FP32","data":[${flatZeros(count * 2 - 1)}]}]}`);
    expect(matched.length).toBeLessThan(MAX_BODY);
    const { replies, latencies, rssRiseMB } = await underAttack(daemon, [mismatched, matched]);
    const p99 = percentile(latencies, 0.99);
    console.log(`flat numbers: small client p99 ${p99.toFixed(1)} ms over ${latencies.length} requests, peak RSS rise ${rssRiseMB.toFixed(0)} MB`);
    expect(replies[0].status).toBe(400);
    expect(replies[0].body.error).toMatch(/shape \[1,1,28,28\] needs 784/);
    expect(replies[1].status).toBe(400);
    expect(replies[1].body.error).toMatch(/rank 1, expected 4/);
    expect(rssRiseMB).toBeLessThan(100);
  });
});

/** An MNIST request whose "data" is `fill(room)` (room even), the body just under MAX_BODY. */
function inferWithData(fill: (room: number) => string): Buffer {
  const [head, tail] = ['{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":', '}]}'];
  const room = MAX_BODY - head.length - tail.length - 1024;
  return Buffer.from(head + fill(room - (room % 2)) + tail);
}

/** "0,0,…,0" of exactly `chars` characters (chars odd). */
function flatZeros(chars: number): string {
  const n = Math.floor((chars + 1) / 2);
  return '0,'.repeat(n - 1) + '0';
}

interface Reply {
  status: number;
  body: { error?: string; code?: string };
}

/** POSTs prebuilt bytes (no client-side copies, so the RSS figure is the server's cost). */
function postBytes(base: string, path: string, body: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sends the attack bodies at once while one small client sends MNIST requests back to back,
 * until the attacks are answered and the client has at least 400 timings (p99 is then the
 * 4th-worst, not one scheduler hiccup on a shared 2-core box).
 */
async function underAttack(d: Daemon, attacks: Buffer[]): Promise<{ replies: Reply[]; latencies: number[]; rssRiseMB: number }> {
  const small = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(PIXELS).fill(0.5) }] }));
  const base = d.url('');
  // Warm the daemon first, so the timings are of the attack rather than of a cold JIT.
  for (let i = 0; i < 100; i++) expect((await postBytes(base, INFER, small)).status).toBe(200);
  const pid = d.proc.pid!;
  const before = resetPeakRss(pid);
  let attacking = true;
  const latencies: number[] = [];
  const client = (async () => {
    while (attacking || latencies.length < 400) {
      const t0 = performance.now();
      const res = await postBytes(base, INFER, small);
      latencies.push(performance.now() - t0);
      expect(res.status).toBe(200);
    }
  })();
  const replies = await Promise.all(attacks.map((body) => postBytes(base, INFER, body)));
  attacking = false;
  await client;
  return { replies, latencies, rssRiseMB: (statusKiB(pid, 'VmHWM') - before) / 1024 };
}

function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]);
}

/** Resets the kernel's peak-RSS mark of a process to its current RSS and returns that RSS, KiB. */
function resetPeakRss(pid: number): number {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  return statusKiB(pid, 'VmRSS');
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

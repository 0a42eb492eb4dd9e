// The real daemon with `preprocess: mnist`: a PNG digit posted as a BYTES input (base64 in
// JSON, raw through the binary extension) gets the same outputs as its tensor posted as
// FP32, and is sampled into the buffer like one; `calibd replay` drives it from folders of
// PNGs and of .npy files and reports the same accuracy for both.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../src/common/index.js';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { writeMnistImages } from '../../scripts/lib/mnist-images.js';
import { startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { repoRoot } from '../helpers/paths.js';

const DIGITS = 40;
let daemon: Daemon;
let digits: Awaited<ReturnType<typeof writeMnistImages>>;

beforeAll(async () => {
  digits = await writeMnistImages(mkdtempSync(join(tmpdir(), 'calibd-bytes-')), loadMnistSplit().test, 0, DIGITS);
  // No recalibration during the test (minSamples at the buffer's size), so every request runs on one model.
  daemon = await startDaemon({ config: { preprocess: 'mnist', sampling: { oneIn: 1, maxRows: 3000 }, recalibration: { everyInferences: 0, minSamples: 3000 } } });
}, 60_000);
afterAll(async () => {
  await daemon?.stop();
});

async function infer(body: Uint8Array, headers: Record<string, string>): Promise<number[]> {
  const r = await fetch(daemon.url('/v2/models/mnist-cnn/infer'), { method: 'POST', headers, body: new Uint8Array(body) });
  const answer = (await r.json()) as { outputs?: { data: number[] }[]; error?: string };
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${answer.error}`);
  return answer.outputs![0].data;
}

const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
const name = (i: number) => String(i).padStart(5, '0');

describe('BYTES images on the real daemon', () => {
  it('a PNG as BYTES (JSON base64 and binary raw) gets the same outputs as its tensor, and is sampled', async () => {
    const before = (await daemon.status()).buffer.rows as number;
    let agree = 0;
    for (let i = 0; i < DIGITS; i++) {
      const png = readFileSync(join(digits.png, `${name(i)}.png`));
      const tensor = readNpy(join(digits.npy, `${name(i)}.npy`)).data as Float32Array;
      const fromTensor = await infer(Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: Array.from(tensor) }] })), { 'content-type': 'application/json' });
      const fromJson = await infer(Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], data: [png.toString('base64')] }] })), { 'content-type': 'application/json' });
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: png.length } }] }));
      const fromBinary = await infer(Buffer.concat([header, png]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) });
      expect(fromJson).toEqual(fromTensor);
      expect(fromBinary).toEqual(fromTensor);
      if (argmax(fromJson) === argmax(fromTensor)) agree++;
    }
    console.log(`${DIGITS} PNG digits posted as BYTES: ${agree}/${DIGITS} same prediction as their tensors (outputs identical)`);
    expect(agree).toBe(DIGITS);
    // oneIn: 1 — every request is sampled, the image ones as their preprocessed tensors.
    await waitFor('sampled rows', async () => ((await daemon.status()).buffer.rows as number) >= before + 3 * DIGITS);
  });

  it('bytes that are no image are a 400 naming the input', async () => {
    const r = await fetch(daemon.url('/v2/models/mnist-cnn/infer'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], data: [Buffer.from('not a png').toString('base64')] }] }),
    });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { code: string; error: string };
    expect(body.code).toBe('invalid-image');
    expect(body.error).toMatch(/^input 'input' image 0 is not a readable JPEG, PNG or WebP image/);
  });

  it('calibd replay sends PNG and .npy folders and reports the same accuracy for both', () => {
    const url = daemon.url('').replace(/\/$/, '');
    const run = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'replay', '--url', url, ...args], { encoding: 'utf8', timeout: 120_000 });
    const png = run('--data', digits.png);
    expect(png.stderr).toBe('');
    expect(png.status).toBe(0);
    expect(png.stdout).toMatch(new RegExp(`^sent ${DIGITS} requests to .*/v2/models/mnist-cnn in .* s \\(.*/s\\), 0 failed\\nlatency p50 [\\d.]+ ms, p95 [\\d.]+ ms`));
    const accuracy = /accuracy ([\d.]+)% \((\d+)\/(\d+)/.exec(png.stdout);
    expect(accuracy?.[3]).toBe(String(DIGITS));
    const npy = run('--data', digits.npy, '--labels', digits.labels, '--count', '60', '--loop', '--rate', '200');
    expect(npy.stderr).toBe('');
    expect(npy.stdout).toMatch(/^sent 60 requests/);
    // 60 requests cycle the 40 digits: 40 + the first 20 again.
    expect(npy.stdout).toMatch(/accuracy [\d.]+% \(\d+\/60 /);
    const first = run('--data', digits.npy, '--labels', digits.labels);
    expect(/accuracy ([\d.]+)%/.exec(first.stdout)?.[1]).toBe(accuracy?.[1]);
    console.log(png.stdout.trim());
  });

  it('replay whose requests the daemon refuses still reports, then fails in one line, exit 2', () => {
    const junk = mkdtempSync(join(tmpdir(), 'calibd-junk-'));
    writeFileSync(join(junk, 'broken.png'), 'not a png');
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'replay', '--url', daemon.url('').replace(/\/$/, ''), '--data', junk], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/^sent 1 requests .*, 1 failed\n/);
    expect(r.stderr).toMatch(/^calibd: 1 of 1 requests failed; the first: broken\.png: input 'input' image 0 is not a readable JPEG, PNG or WebP image .*\n$/);
  });

  it('replay without a daemon is one line, exit 2', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'replay', '--url', `http://127.0.0.1:${port}`, '--data', digits.png], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`calibd: cannot reach http://127.0.0.1:${port} (ECONNREFUSED): start the daemon with \`calibd serve\`, or check --url\n`);
  });
});

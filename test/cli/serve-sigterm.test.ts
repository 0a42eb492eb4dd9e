// SIGTERM is a clean stop: a request that is still arriving when the signal lands is
// finished and answered, the process exits 0, and every sample taken before the signal is
// in the database when the daemon comes back.
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { logEvents, sendDigits, sleep, waitExit, withDb } from '../helpers/serve.js';

let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

/** Starts a request, sends half its body, and returns a function that sends the rest and awaits the reply. */
function halfSentRequest(d: Daemon, body: string): { finish: () => Promise<{ status: number; body: string }> } {
  const bytes = Buffer.from(body);
  const half = Math.floor(bytes.length / 2);
  let settle!: (v: { status: number; body: string }) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<{ status: number; body: string }>((res, rej) => {
    settle = res;
    fail = rej;
  });
  const req = request(
    { host: '127.0.0.1', port: d.port, path: '/v2/models/mnist-cnn/infer', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': bytes.length } },
    (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => settle({ status: res.statusCode ?? 0, body: text }));
    },
  );
  req.on('error', fail);
  req.write(bytes.subarray(0, half));
  return {
    finish: () => {
      req.end(bytes.subarray(half));
      return done;
    },
  };
}

describe('calibd serve: SIGTERM', () => {
  it('finishes the in-flight request, exits 0, and keeps every sample sent before the signal', async () => {
    const { train } = loadMnistSplit();
    daemon = await startDaemon({ config: { recalibration: { everyInferences: 0, minSamples: 100, validationSlice: 100 } } });
    const d = daemon;
    const sent = 120;
    // A request whose body is still arriving when the signal lands.
    const digit = Array.from(train.images.subarray(500 * IMAGE_SIZE, 501 * IMAGE_SIZE));
    const slow = halfSentRequest(d, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: digit }] }));
    await sleep(100);
    await sendDigits(d, train.images, sent);
    // The answers are out; their samples may still be on their way to the buffer.
    d.proc.kill('SIGTERM');
    await sleep(300);
    const reply = await slow.finish();
    const { code, signal } = await waitExit(d);
    if (code !== 0) console.log(`daemon exit ${code} ${signal}; last log lines:\n${d.logs.slice(-12).join("\n")}`);
    expect(reply.status, reply.body).toBe(200);
    expect(JSON.parse(reply.body).outputs[0].data).toHaveLength(10);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(logEvents(d, 'stopped')).toHaveLength(1);

    const rows = withDb(d.stateDir, (db) => db.prepare('SELECT COUNT(*) FROM samples').pluck().get() as number);
    daemon = await startDaemon({ stateDir: d.stateDir, configPath: d.configPath });
    const s = await daemon.status();
    console.log(`SIGTERM: ${sent} sampled requests before the signal + 1 in flight; ${rows} rows in the database after exit, ${s.buffer.rows} after restart; exit code ${code}`);
    // The request answered after the signal was sampled too: its sample is kept, not dropped with the worker.
    expect(rows).toBeGreaterThanOrEqual(sent + 1);
    expect(s.buffer.rows).toBe(rows);
  }, 60_000);
});

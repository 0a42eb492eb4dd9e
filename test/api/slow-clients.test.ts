// Clients that hold connections without finishing their requests: bodies and headers
// trickled a byte at a time, idle keep-alive connections, and more connections than the
// device should keep. Real sockets over loopback against servers with short limits.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type Started } from './helpers.js';

const TRICKLE_MS = 100;
const openSockets: Socket[] = [];

describe('slow and idle clients', () => {
  let s: Started | undefined;
  afterEach(async () => {
    // Whatever a failed test left open must not keep the server from closing.
    for (const socket of openSockets.splice(0)) socket.destroy();
    await s?.stop();
    s = undefined;
  });

  it('a body trickled one byte at a time gets a 408 and its connection closed after requestTimeoutMs', async () => {
    s = await startServer({ requestTimeoutMs: 600 });
    const c = await openConnection(s.base);
    c.socket.write('POST /v2/models/mnist/infer HTTP/1.1\r\nHost: calibd\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
    const closedAfter = await trickleUntilClosed(c, '[', 3000);
    expect(closedAfter).toBeGreaterThanOrEqual(550);
    expect(closedAfter).toBeLessThan(1500);
    expect(responseOf(c)).toEqual({ status: 408, body: { error: 'the request did not arrive within http.requestTimeoutMs (600 ms): send the whole request at once, or raise http.requestTimeoutMs for slow links', code: 'request-timeout' } });
    const metrics = await (await fetch(`${s.base}/metrics`)).text();
    // Counted once, as a timeout: the body it cut off is not counted again.
    expect(metrics.match(/^calibd_http_errors_total\{.*$/gm)).toEqual(['calibd_http_errors_total{code="request-timeout"} 1']);
  });

  it('headers trickled one byte at a time are cut off within the same bound', async () => {
    s = await startServer({ requestTimeoutMs: 600 });
    const c = await openConnection(s.base);
    c.socket.write('GET /v2/health/live HTTP/1.1\r\nHost: calibd\r\n');
    const closedAfter = await trickleUntilClosed(c, 'X', 3000);
    expect(closedAfter).toBeLessThan(1500);
    expect(responseOf(c).status).toBe(408);
  });

  it('closes an idle keep-alive connection after keepAliveTimeoutMs', async () => {
    s = await startServer({ keepAliveTimeoutMs: 300 });
    const c = await openConnection(s.base);
    c.socket.write('GET /v2/health/live HTTP/1.1\r\nHost: calibd\r\n\r\n');
    const closedAfter = await closedWithin(c, 3000);
    expect(responseOf(c)).toEqual({ status: 200, body: { live: true } });
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(closedAfter).toBeLessThan(1500);
  });

  it('closes connections past maxConnections as they arrive, and takes new ones once some close', async () => {
    s = await startServer({ maxConnections: 3 });
    const held = await Promise.all([1, 2, 3].map(() => openConnection(s!.base)));
    const extra = await openConnection(s.base);
    expect(await closedWithin(extra, 1000)).toBeLessThan(1000);
    expect(extra.received()).toBe('');
    for (const c of held) expect(c.socket.destroyed).toBe(false);
    held[0].socket.destroy();
    await closedWithin(held[0], 1000);
    // The server notices the close on its side too; give it a moment.
    await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(`${s.base}/v2/health/live`);
    expect(res.status).toBe(200);
    for (const c of held.slice(1)) c.socket.destroy();
  });
});

interface Connection {
  socket: Socket;
  received(): string;
  /** Milliseconds from opening to the server closing it. */
  closed: Promise<number>;
}

async function openConnection(base: string): Promise<Connection> {
  const url = new URL(base);
  const opened = performance.now();
  const socket = connect(Number(url.port), url.hostname);
  openSockets.push(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  // A reset after the server closes is expected; the test looks at what arrived before it.
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now() - opened)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks).toString('utf8'), closed };
}

/** When the server closed the connection, or Infinity if it is still open after `ms`. */
function closedWithin(c: Connection, ms: number): Promise<number> {
  return Promise.race([c.closed, new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), ms))]);
}

/** Writes one byte every TRICKLE_MS until the server closes the connection or `ms` pass. */
async function trickleUntilClosed(c: Connection, byte: string, ms: number): Promise<number> {
  const trickle = setInterval(() => c.socket.writable && c.socket.write(byte), TRICKLE_MS);
  try {
    return await closedWithin(c, ms);
  } finally {
    clearInterval(trickle);
  }
}

/** The status and JSON body of the one response a connection received. */
function responseOf(c: Connection): { status: number; body: unknown } {
  const text = c.received();
  const [head, body] = text.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  return { status, body: body ? JSON.parse(body) : undefined };
}

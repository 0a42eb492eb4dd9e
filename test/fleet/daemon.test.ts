// The fleet end to end: two real daemons (dev-a, dev-b) on a real mosquitto with users,
// the shipped ACL and a signing key; an operator drives them through FleetClient and raw
// MQTT. Covers retained status and the last will, every command's success and error paths,
// MQTT 5 response topic / correlation data, signing, and ACL denials.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import mqtt, { type MqttClient } from 'mqtt';
import { FleetClient, signPayload } from '../../src/fleet/index.js';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { inferDigits, mqttConfig, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { mosquittoSkipReason, startBroker, type TestBroker } from '../helpers/mosquitto.js';
import { repoRoot } from '../helpers/paths.js';

const KEY = Buffer.from('fleet-test-signing-key-0123456789abcdef');
const HTTP_TOKEN = 'http-bearer-token-never-leaves-0123';
let broker: TestBroker;
let dir: string;
let a: Daemon;
let b: Daemon;
let op: FleetClient; // operator with the signing key
let noKey: FleetClient; // operator without it
const clients: MqttClient[] = [];

function deviceConfig(id: string) {
  const passwordFile = join(dir, `${id}.pw`);
  writeFileSync(passwordFile, `${broker.users[id]}\n`);
  return {
    deviceId: id,
    sampling: { oneIn: 1, maxRows: 3000 },
    recalibration: { everyInferences: 0, method: 'percentile', minSamples: 40, validationSlice: 40, driftThreshold: 5, forgetting: 0.98 },
    log: { level: 'info' },
    mqtt: mqttConfig(broker.url, broker.secure ? { user: id, passwordFile, metricsIntervalSec: 1 } : { metricsIntervalSec: 1 }),
  };
}

async function startDevice(id: string, stateDir?: string): Promise<Daemon> {
  const stateDirFinal = stateDir ?? mkdtempSync(join(dir, `${id}-`));
  return startDaemon({ stateDir: stateDirFinal, config: { ...deviceConfig(id), stateDir: stateDirFinal }, env: { CALIBD_MQTT_SIGNING_KEY_FILE: join(dir, 'key'), CALIBD_HTTP_TOKEN: HTTP_TOKEN } });
}

function operator(signed: boolean, protocolVersion: 4 | 5 = 5): Promise<FleetClient> {
  return FleetClient.connect({ url: broker.url, username: 'operator', password: broker.users.operator, signingKey: signed ? KEY : undefined, protocolVersion });
}

async function raw(user: string, password: string, protocolVersion: 4 | 5 = 5): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, { username: user, password, protocolVersion, reconnectPeriod: 0, clientId: `raw-${user}-${Math.random().toString(16).slice(2, 8)}` });
  clients.push(c);
  return c;
}

function nextMessage(c: MqttClient, topic: string, timeoutMs = 5000): Promise<{ payload: any; packet: any } | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      c.off('message', on);
      resolve(null);
    }, timeoutMs);
    const on = (tp: string, payload: Buffer, packet: any) => {
      if (tp !== topic) return;
      clearTimeout(t);
      c.off('message', on);
      let v: unknown = payload.toString();
      try {
        v = JSON.parse(v as string);
      } catch {
        /* raw */
      }
      resolve({ payload: v, packet });
    };
    c.on('message', on);
  });
}

const one = async (target: string | null, command: string, args: Record<string, unknown> = {}, client = op, timeoutMs = 20_000) => {
  const replies = await client.request(target, command, args, { timeoutMs });
  expect(replies.length).toBeGreaterThan(0);
  return replies[0];
};

const skipReason = mosquittoSkipReason();
if (skipReason) console.warn(`[fleet tests] ${skipReason}`);

beforeAll(async () => {
  if (skipReason) return;
  dir = mkdtempSync(join(tmpdir(), 'calibd-fleet-'));
  writeFileSync(join(dir, 'key'), KEY);
  broker = await startBroker();
  [a, b] = await Promise.all([startDevice('dev-a'), startDevice('dev-b')]);
  [op, noKey] = await Promise.all([operator(true), operator(false)]);
  // Enough live samples on dev-a for calibrations.
  const { test } = loadMnistSplit();
  // One request per image: a batched request is sampled as one row.
  for (let i = 0; i < 100; i++) await inferDigits(a, test.images.subarray(i * 784), 1);
  await waitFor('dev-a samples in the buffer', async () => (await a.status()).buffer.rows >= 60, 30_000);
});

afterAll(async () => {
  for (const c of clients) await c.endAsync().catch(() => undefined);
  await op?.close();
  await noKey?.close();
  await a?.stop();
  await b?.stop();
  await broker?.stop();
});

describe.skipIf(skipReason !== null)(`fleet over MQTT`, () => {
  it('publishes a retained online status per device', async () => {
    const devices = await waitFor('two online devices', async () => {
      const d = await op.devices();
      return d.filter((s) => s.state === 'online').length === 2 && d;
    }, 15_000);
    const da = devices.find((d) => d.device === 'dev-a')!;
    expect(da).toMatchObject({ state: 'online', deviceId: 'dev-a', calibdVersion: expect.any(String), model: { name: 'mnist-cnn' }, calibration: { version: expect.any(Number), method: expect.any(String) } });
  });

  it('publishes metrics and events', async () => {
    const got: Record<string, any[]> = { metrics: [], events: [] };
    const stop = await op.watch('dev-a', 'test-watch', (_d, kind, v) => got[kind]?.push(v));
    const { test } = loadMnistSplit();
    await inferDigits(a, test.images, 5);
    await op.request('dev-a', 'config/set', { key: 'recalibration.gateMargin', value: 0 }); // emits config.changed
    await waitFor('metrics with latency and an event', async () => got.metrics.some((m) => m.inference.total > 0 && m.latencyMs.p50 !== null) && got.events.length > 0, 10_000);
    await stop();
    const m = got.metrics.find((x) => x.latencyMs.p50 !== null);
    expect(m).toMatchObject({
      inference: { total: expect.any(Number), ratePerSec: expect.any(Number), errors: 0 },
      latencyMs: { p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number) },
      buffer: { rows: expect.any(Number), fill: expect.any(Number) },
      drift: { score: expect.any(Number) },
      calibration: { version: expect.any(Number), ageSec: expect.any(Number) },
      health: { rssBytes: expect.any(Number) },
      mqtt: { connected: true, queueMax: 50 },
    });
    expect(got.events.find((e) => e.type === 'config.changed')).toMatchObject({ type: 'config.changed', data: { key: 'recalibration.gateMargin', value: 0 } });
  });

  it('answers status, config/get and buffer/stats', async () => {
    const s = await one('dev-a', 'status');
    expect(s).toMatchObject({ device: 'dev-a', status: 'ok', data: { deviceId: 'dev-a', calibration: { version: expect.any(Number) }, mqtt: { connected: true } } });
    const all = await one('dev-a', 'config/get');
    expect(all.data).toMatchObject({ tunable: { 'sampling.oneIn': 1, 'recalibration.method': 'percentile' }, config: { deviceId: 'dev-a' } });
    expect(await one('dev-a', 'config/get', { key: 'mqtt.queueMax' })).toMatchObject({ status: 'ok', data: { key: 'mqtt.queueMax', value: 50, tunable: false } });
    // The bearer token is set (CALIBD_HTTP_TOKEN) but never leaves: not whole, not by section, not by key.
    for (const args of [{}, { key: 'http' }, { key: 'http.token' }]) {
      const got = await one('dev-a', 'config/get', args);
      expect(got.status).toBe('ok');
      expect(JSON.stringify(got)).not.toContain(HTTP_TOKEN);
      expect(JSON.stringify(got)).toContain('***');
    }
    const bs = await one('dev-a', 'buffer/stats');
    expect(bs).toMatchObject({ status: 'ok', data: { rows: expect.any(Number) } });
    expect((bs.data as any).rows).toBeGreaterThan(0);
  });

  it('config/set changes the running agent; bad keys and values change nothing', async () => {
    expect(await one('dev-a', 'config/set', { key: 'sampling.oneIn', value: 3 })).toMatchObject({ status: 'ok', data: { key: 'sampling.oneIn', value: 3, previous: 1 } });
    expect((await one('dev-a', 'config/get', { key: 'sampling.oneIn' })).data).toMatchObject({ value: 3 });
    const bad = [
      [{ key: 'sampling.oneIn', value: 0 }, /sampling.oneIn/],
      [{ key: 'sampling.oneIn', value: 'many' }, /sampling.oneIn/],
      [{ key: 'model', value: 'x.onnx' }, /cannot be changed at run time/],
      [{ key: 'recalibration.cron', value: 'not cron' }, /cron/],
      [{ value: 2 }, /needs 'key'/],
      [{ key: 'sampling.oneIn' }, /needs 'value'/],
      [{ key: 'sampling.oneIn', value: 2, extra: 1 }, /unknown field 'extra'/],
    ] as const;
    for (const [args, msg] of bad) {
      const r = await one('dev-a', 'config/set', args as Record<string, unknown>);
      expect(r.status, JSON.stringify(args)).toBe('error');
      expect(r.error).toMatch(msg);
    }
    expect((await one('dev-a', 'config/get', { key: 'sampling.oneIn' })).data).toMatchObject({ value: 3 });
    expect(await one('dev-a', 'config/get', { key: 'no.such' })).toMatchObject({ status: 'error', error: expect.stringMatching(/no config key/) });
    expect(await one('dev-a', 'config/set', { key: 'recalibration.method', value: 'minmax' })).toMatchObject({ status: 'ok', data: { value: 'minmax' } });
    expect(await one('dev-a', 'config/set', { key: 'recalibration.cron', value: '0 3 * * *' })).toMatchObject({ status: 'ok' });
    expect(await one('dev-a', 'config/set', { key: 'recalibration.cron', value: null })).toMatchObject({ status: 'ok', data: { value: null } });
  });

  it('recalibrate and rollback, with their error paths', async () => {
    const r = await one('dev-a', 'recalibrate', { full: true });
    expect(r, JSON.stringify(r)).toMatchObject({ status: 'ok', data: { version: expect.any(Number), state: expect.stringMatching(/accepted|rejected/) } });
    expect((r.data as any).figures).toMatchObject({ agreement: expect.any(Number) });
    // The method set by config/set above is the one the recalibration used.
    const list = (await one('dev-a', 'status')).data as any;
    expect(list.calibration.liveMethod).toBe('minmax');
    expect(await one('dev-a', 'recalibrate', { method: 'bogus' })).toMatchObject({ status: 'error', error: expect.stringMatching(/unknown calibration method/), data: { code: 'option' } });
    expect(await one('dev-a', 'recalibrate', { full: 'yes' })).toMatchObject({ status: 'error', error: expect.stringMatching(/'full'/) });

    const before = ((await one('dev-a', 'status')).data as any).calibration.version;
    // v1 is the data-free calibration made at first boot: always there to roll back to.
    expect(await one('dev-a', 'rollback', { version: 1 })).toMatchObject({ status: 'ok', data: { version: 1 } });
    expect(await one('dev-a', 'rollback')).toMatchObject({ status: 'error', error: expect.stringMatching(/no earlier accepted calibration/) });
    expect(await one('dev-a', 'rollback', { version: before })).toMatchObject({ status: 'ok', data: { version: before } });
    expect(await one('dev-a', 'rollback', { version: 999 })).toMatchObject({ status: 'error', error: expect.stringMatching(/no calibration version 999/) });
    expect(await one('dev-a', 'rollback', { version: 'one' })).toMatchObject({ status: 'error', error: expect.stringMatching(/positive integer/) });
    const after = ((await one('dev-a', 'status')).data as any).calibration.version;
    expect(after).toBe(before);
  });

  it('stats answers with statistics, never inputs; apply refuses a calibration of another model before any work', async () => {
    const s = await one('dev-a', 'stats', {}, noKey); // read-only: no signature needed
    expect(s).toMatchObject({ status: 'ok', data: { format: 'calibd-stats', version: 1, sourceModelSha256: expect.stringMatching(/^[0-9a-f]{64}$/), devices: ['dev-a'] } });
    const bundle = s.data as any;
    expect(bundle.sampleCount).toBeGreaterThan(0);
    expect(bundle.tensors.length).toBeGreaterThan(0);
    const calibration = { format: 'calibd-ranges', version: 1, sourceModelSha256: 'b'.repeat(64), graph: bundle.graph, method: 'mse', devices: ['x'], sampleCount: 1, createdAt: '', ranges: [] };
    const before = ((await one('dev-a', 'status')).data as any).calibration.version;
    expect(await one('dev-a', 'apply', { calibration })).toMatchObject({ status: 'error', data: { code: 'model-mismatch' }, error: expect.stringMatching(/this device serves/) });
    expect(await one('dev-a', 'apply', { calibration: { ...calibration, sourceModelSha256: bundle.sourceModelSha256, graph: 'other' } })).toMatchObject({ status: 'error', data: { code: 'model-mismatch' } });
    expect(await one('dev-a', 'apply', { calibration: { format: 'nope' } })).toMatchObject({ status: 'error', data: { code: 'data' } });
    expect(((await one('dev-a', 'status')).data as any).calibration.version).toBe(before);
  });

  it('export answers the active calibration as a TensorRT calibration cache', async () => {
    const r = await one('dev-a', 'export', { format: 'tensorrt-cache', trtVersion: 10300 }, noKey);
    expect(r).toMatchObject({ status: 'ok', data: { format: 'tensorrt-cache', version: expect.any(Number), tensors: expect.any(Number) } });
    const lines = (r.data as any).text.trimEnd().split('\n');
    expect(lines[0]).toBe('TRT-10300-EntropyCalibration2');
    expect(lines.length).toBe((r.data as any).tensors + 1);
    for (const l of lines.slice(1)) expect(l).toMatch(/^[^:]+: [0-9a-f]{1,8}$/);
    expect(await one('dev-a', 'export', { format: 'engine' })).toMatchObject({ status: 'error', data: { code: 'option' }, error: expect.stringMatching(/unknown export format 'engine'/) });
  });

  it('buffer/clear empties the buffer; recalibrate then fails cleanly', async () => {
    expect(await one('dev-b', 'buffer/clear', { all: true })).toMatchObject({ status: 'error', error: expect.stringMatching(/unknown field 'all'/), data: { hint: 'this command takes no arguments' } });
    const { test } = loadMnistSplit();
    await inferDigits(b, test.images, 5);
    await waitFor('dev-b samples', async () => ((await one('dev-b', 'buffer/stats')).data as any).rows > 0, 5000);
    const c = await one('dev-b', 'buffer/clear');
    expect(c).toMatchObject({ status: 'ok', data: { cleared: expect.any(Number) } });
    expect(((await one('dev-b', 'buffer/stats')).data as any).rows).toBe(0);
    expect(await one('dev-b', 'recalibrate')).toMatchObject({ status: 'error', data: { code: 'no-samples' } });
  });

  it('refuses invalid JSON, non-objects and unknown commands, echoing the transaction', async () => {
    const c = await raw('operator', broker.users.operator);
    await c.subscribeAsync('calibd/dev-a/response/#', { qos: 1 });
    const cases: [string, string, RegExp][] = [
      ['status', '{not json', /not valid JSON/],
      ['status', '[1,2]', /must be a JSON object/],
      ['reboot', '{"transaction":"t-9"}', /unknown command 'reboot'/],
    ];
    for (const [cmd, body, msg] of cases) {
      const wait = nextMessage(c, `calibd/dev-a/response/${cmd}`);
      await c.publishAsync(`calibd/dev-a/request/${cmd}`, body, { qos: 1 });
      const r = await wait;
      expect(r?.payload, cmd).toMatchObject({ status: 'error', error: expect.stringMatching(msg) });
    }
    const wait = nextMessage(c, 'calibd/dev-a/response/reboot');
    await c.publishAsync('calibd/dev-a/request/reboot', '{"transaction":"t-9"}', { qos: 1 });
    expect((await wait)?.payload).toMatchObject({ transaction: 't-9' });
  });

  it('MQTT 5: answers on the given response topic with the correlation data; 3.1.1: transaction only', async () => {
    const c = await raw('operator', broker.users.operator);
    const rt = 'calibd/dev-a/response/status/mine';
    await c.subscribeAsync(rt, { qos: 1 });
    const wait = nextMessage(c, rt);
    await c.publishAsync('calibd/dev-a/request/status', '{}', { qos: 1, properties: { responseTopic: rt, correlationData: Buffer.from('corr-42') } });
    const r = await wait;
    expect(r?.payload).toMatchObject({ status: 'ok' });
    expect(r?.packet.properties.correlationData.toString()).toBe('corr-42');

    const v4 = await operator(false, 4);
    try {
      const rep = await v4.request('dev-a', 'status', {}, { timeoutMs: 5000 });
      expect(rep).toHaveLength(1);
      expect(rep[0].status).toBe('ok');
    } finally {
      await v4.close();
    }
  });

  it('fleet-wide requests reach every device, each answering on its own topic', async () => {
    const replies = await op.request(null, 'status', {}, { timeoutMs: 5000, expect: ['dev-a', 'dev-b'] });
    expect(replies.map((r) => [r.device, r.status])).toEqual([['dev-a', 'ok'], ['dev-b', 'ok']]);
  });

  it('with a signing key: unsigned, expired, tampered and replayed commands are refused', async () => {
    // Read-only commands need no signature.
    expect(await one('dev-a', 'status', {}, noKey)).toMatchObject({ status: 'ok' });
    for (const [cmd, args] of [['recalibrate', {}], ['rollback', {}], ['config/set', { key: 'sampling.oneIn', value: 7 }], ['buffer/clear', {}], ['apply', { calibration: {} }]] as const) {
      expect(await one('dev-a', cmd, args, noKey), cmd).toMatchObject({ status: 'error', data: { code: 'unauthorized' }, error: expect.stringMatching(/missing or malformed signature/) });
    }
    expect((await one('dev-a', 'config/get', { key: 'sampling.oneIn' })).data).toMatchObject({ value: 3 });

    const c = await raw('operator', broker.users.operator);
    await c.subscribeAsync('calibd/dev-a/response/config/set', { qos: 1 });
    const send = async (payload: Record<string, unknown>) => {
      const wait = nextMessage(c, 'calibd/dev-a/response/config/set');
      await c.publishAsync('calibd/dev-a/request/config/set', JSON.stringify(payload), { qos: 1 });
      return (await wait)?.payload;
    };
    const expired = signPayload(KEY, { target: 'dev-a', command: 'config/set' }, { key: 'sampling.oneIn', value: 7 }, Date.now() - 120_000);
    expect(await send(expired)).toMatchObject({ status: 'error', error: expect.stringMatching(/window/) });
    const good = signPayload(KEY, { target: 'dev-a', command: 'config/set' }, { key: 'sampling.oneIn', value: 4 });
    expect(await send({ ...good, value: 8 })).toMatchObject({ status: 'error', error: expect.stringMatching(/bad signature/) });
    expect(await send(good)).toMatchObject({ status: 'ok', data: { value: 4 } });
    expect(await send(good)).toMatchObject({ status: 'error', error: expect.stringMatching(/replayed/) });
    expect((await one('dev-a', 'config/get', { key: 'sampling.oneIn' })).data).toMatchObject({ value: 4 });
    // The same signed request republished to dev-b within the window: refused there.
    const forB = signPayload(KEY, { target: 'dev-a', command: 'config/set' }, { key: 'sampling.oneIn', value: 5 });
    await c.subscribeAsync('calibd/dev-b/response/config/set', { qos: 1 });
    expect(await send(forB)).toMatchObject({ status: 'ok', data: { value: 5 } });
    const atB = nextMessage(c, 'calibd/dev-b/response/config/set');
    await c.publishAsync('calibd/dev-b/request/config/set', JSON.stringify(forB), { qos: 1 });
    expect((await atB)?.payload).toMatchObject({ status: 'error', error: expect.stringMatching(/bad signature/) });
    expect((await one('dev-b', 'config/get', { key: 'sampling.oneIn' })).data).not.toMatchObject({ value: 5 });
  });

  it('ACL: a device cannot write into or read another device\'s topics; wrong passwords are refused', async (ctx) => {
    if (!broker.secure) ctx.skip();
    const watcher = await raw('operator', broker.users.operator);
    await watcher.subscribeAsync(['calibd/dev-a/#'], { qos: 1 });
    const seen: string[] = [];
    watcher.on('message', (t, p) => seen.push(`${t} ${p.toString()}`));

    const devB = await raw('dev-b', broker.users['dev-b']);
    const leaked: string[] = [];
    devB.on('message', (t) => leaked.push(t));
    // Mosquitto grants the subscription but never delivers what the ACL forbids.
    await devB.subscribeAsync(['calibd/dev-a/#', 'calibd/dev-b/request/#', 'calibd/fleet/request/#'], { qos: 1 });
    await one('dev-a', 'status');
    await op.request(null, 'status', {}, { timeoutMs: 3000, expect: ['dev-a'] });
    // Publishing under dev-a (forged status, a request) is refused: PUBACK "not authorized".
    await expect(devB.publishAsync('calibd/dev-a/status', '{"state":"offline"}', { qos: 1, retain: true })).rejects.toThrow(/authori[sz]ed/i);
    await expect(devB.publishAsync('calibd/dev-a/request/buffer/clear', '{}', { qos: 1 })).rejects.toThrow(/authori[sz]ed/i);
    // Nor may a device send fleet-wide requests, or requests to itself.
    await expect(devB.publishAsync('calibd/fleet/request/buffer/clear', '{}', { qos: 1 })).rejects.toThrow(/authori[sz]ed/i);
    await expect(devB.publishAsync('calibd/dev-b/request/buffer/clear', '{}', { qos: 1 })).rejects.toThrow(/authori[sz]ed/i);
    // What it may do: publish its own telemetry.
    await devB.publishAsync('calibd/dev-b/events', '{"type":"test"}', { qos: 1 });
    // It received the fleet-wide request only, nothing of dev-a's.
    expect(leaked.filter((t) => t.startsWith('calibd/dev-a/'))).toEqual([]);
    expect(leaked).toContain('calibd/fleet/request/status');
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.filter((m) => m.includes('"state":"offline"') || m.startsWith('calibd/dev-a/response/buffer'))).toEqual([]);
    expect(((await one('dev-a', 'buffer/stats')).data as any).rows).toBeGreaterThan(0);

    await expect(mqtt.connectAsync(broker.url, { username: 'dev-b', password: 'wrong', reconnectPeriod: 0, protocolVersion: 5 })).rejects.toThrow(/Not authorized|Bad User Name or Password/i);
    await expect(mqtt.connectAsync(broker.url, { reconnectPeriod: 0, protocolVersion: 5 })).rejects.toThrow();
  });

  it('calibd fleet: ls, config get/set, rollback, recalibrate --all (tables and --json)', async () => {
    const env = { ...process.env, CALIBD_MQTT_URL: broker.url, CALIBD_MQTT_USERNAME: 'operator', CALIBD_MQTT_PASSWORD: broker.users.operator, CALIBD_MQTT_SIGNING_KEY_FILE: join(dir, 'key') };
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'fleet', ...args], { env, encoding: 'utf8', timeout: 60_000 });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    const ls = cli('ls', '--json');
    expect(ls.code, ls.err).toBe(0);
    expect(JSON.parse(ls.out).map((d: any) => d.device)).toEqual(expect.arrayContaining(['dev-a', 'dev-b']));
    expect(cli('ls').out).toMatch(/^DEVICE\s+STATE\s+VERSION/);
    const set = cli('config', 'dev-a', 'set', 'recalibration.driftThreshold=0.5');
    expect(set.code, set.err + set.out).toBe(0);
    expect(set.out).toMatch(/dev-a\s+ok\s+recalibration.driftThreshold=0.5/);
    const bad = cli('config', 'dev-a', 'set', 'sampling.oneIn=0');
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/dev-a\s+error/);
    const get = cli('config', 'dev-a', 'get', 'recalibration.driftThreshold', '--json');
    expect(JSON.parse(get.out).replies[0]).toMatchObject({ status: 'ok', data: { value: 0.5 } });
    const rb = cli('rollback', 'dev-a', '1');
    expect(rb.out).toMatch(/dev-a\s+ok\s+active v1/);
    const all = cli('recalibrate', '--all', '--json');
    const replies = JSON.parse(all.out).replies;
    // dev-a has samples; dev-b's buffer was cleared above and says so.
    expect(replies.map((r: any) => [r.device, r.status])).toEqual([['dev-a', 'ok'], ['dev-b', 'error']]);
    expect(all.code).toBe(1);
    const usage = cli('recalibrate');
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/device id or --all/);
  });

  it('the last will marks a device offline after kill -9; a restart is retained online at once', async () => {
    const c = await raw('operator', broker.users.operator);
    await c.subscribeAsync('calibd/dev-b/status', { qos: 1 });
    const offline = new Promise<any>((resolve) =>
      c.on('message', (t, p) => {
        const v = JSON.parse(p.toString());
        if (t === 'calibd/dev-b/status' && v.state === 'offline') resolve(v);
      }),
    );
    const t0 = Date.now();
    await b.kill9();
    const will = await offline;
    expect(will).toMatchObject({ state: 'offline', deviceId: 'dev-b', reason: 'connection lost' });
    // keepalive 5 s: the broker gives up after 1.5 × keepalive at most (here the socket closes at once).
    expect(Date.now() - t0).toBeLessThan(9000);
    // A fresh client sees the retained offline status.
    expect((await op.devices()).find((d) => d.device === 'dev-b')).toMatchObject({ state: 'offline' });

    b = await startDevice('dev-b', b.stateDir);
    const back = await waitFor('dev-b retained online', async () => {
      const fresh = await operator(false);
      try {
        const d = (await fresh.devices({ maxWaitMs: 1000 })).find((x) => x.device === 'dev-b');
        return d?.state === 'online' && d;
      } finally {
        await fresh.close();
      }
    }, 10_000);
    expect(back).toMatchObject({ state: 'online', calibration: { version: expect.any(Number) } });

    // A clean stop publishes offline with reason 'shutdown'.
    await b.stop();
    expect((await op.devices()).find((d) => d.device === 'dev-b')).toMatchObject({ state: 'offline', reason: 'shutdown' });
  });
});

// The operator's side: list devices from their retained status, send a request to one
// device or the whole fleet and collect the answers, watch telemetry. Used by
// `calibd fleet …` and by the tests.

import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { FLEET_LEVEL, deviceOf, requestTopic } from './topics.js';
import { signPayload } from './signing.js';
import { CalibdError } from '../common/errors.js';
import { PartAssembler } from './payload.js';

export interface FleetClientOptions {
  url: string;
  baseTopic?: string;
  protocolVersion?: 4 | 5;
  username?: string;
  password?: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  signingKey?: Buffer;
  clientId?: string;
  connectTimeoutMs?: number;
}

export interface DeviceReply {
  device: string;
  status: 'ok' | 'error';
  data: unknown;
  error?: string;
  /** Milliseconds from the request to this answer. */
  ms: number;
  /** Payload bytes of the answer as received (compressed parts included). */
  bytes: number;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Devices a fleet-wide request waits for (named targets are always waited for). */
  expect?: string[];
  /**
   * Sees each answer as it arrives; the returned replies then carry no data, so answers
   * as large as statistics are not all held at once.
   */
  onReply?: (reply: DeviceReply) => void;
}

export interface DeviceStatus {
  device: string;
  state: string;
  [k: string]: unknown;
}

export class FleetClient {
  readonly base: string;
  private handlers = new Set<(topic: string, payload: Buffer, packet: IPublishPacket) => void>();

  private constructor(
    readonly client: MqttClient,
    private readonly o: FleetClientOptions,
  ) {
    this.base = o.baseTopic ?? 'calibd';
    client.on('message', (topic, payload, packet) => {
      for (const h of this.handlers) h(topic, payload, packet);
    });
  }

  /**
   * Connects with MQTT 5, or 3.1.1 when asked; without an explicit version a broker that
   * only speaks 3.1.1 (like the daemon's embedded one) is retried at 3.1.1.
   */
  static async connect(o: FleetClientOptions): Promise<FleetClient> {
    try {
      return await FleetClient.connectWith({ ...o, protocolVersion: o.protocolVersion ?? 5 });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (o.protocolVersion === undefined && /protocol version/i.test(msg)) {
        return FleetClient.connectWith({ ...o, protocolVersion: 4 }).catch((e: unknown) => {
          throw connectError(o.url, e);
        });
      }
      throw connectError(o.url, err);
    }
  }

  private static async connectWith(o: FleetClientOptions): Promise<FleetClient> {
    const opts: IClientOptions = {
      clientId: o.clientId ?? `calibd-cli-${randomBytes(4).toString('hex')}`,
      protocolVersion: o.protocolVersion ?? 5,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs ?? 5000,
      queueQoSZero: false,
      username: o.username,
      password: o.password,
      ...(o.tls ?? {}),
    };
    const client = await mqtt.connectAsync(o.url, opts);
    client.on('error', () => undefined); // surfaced through the awaited calls instead
    return new FleetClient(client, o);
  }

  private listen(h: (topic: string, payload: Buffer, packet: IPublishPacket) => void): () => void {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }

  /** Subscribes and throws when the broker refuses (SUBACK failure code). */
  async subscribe(filters: string[]): Promise<void> {
    const granted = await this.client.subscribeAsync(filters, { qos: 1 });
    const refused = granted.filter((g) => g.qos >= 0x80);
    if (refused.length) throw new Error(`broker refused subscription to ${refused.map((g) => g.topic).join(', ')} (not authorized?)`);
  }

  /** Retained status of every device, gathered until no new one arrived for `quietMs`. */
  async devices(opts: { maxWaitMs?: number; quietMs?: number } = {}): Promise<DeviceStatus[]> {
    const found = new Map<string, DeviceStatus>();
    let last = Date.now();
    const stop = this.listen((topic, payload) => {
      const d = deviceOf(this.base, topic);
      if (!d || d.rest !== 'status') return;
      try {
        const s = JSON.parse(payload.toString()) as Record<string, unknown>;
        found.set(d.device, { ...s, device: d.device, state: String(s.state ?? 'unknown') });
        last = Date.now();
      } catch {
        found.set(d.device, { device: d.device, state: 'unreadable' });
      }
    });
    const filter = `${this.base}/+/status`;
    try {
      await this.subscribe([filter]);
      const t0 = Date.now();
      const max = opts.maxWaitMs ?? 2000;
      const quiet = opts.quietMs ?? 300;
      while (Date.now() - t0 < max && Date.now() - last < quiet + (found.size === 0 ? 700 : 0)) await sleep(50);
    } finally {
      stop();
      await this.client.unsubscribeAsync(filter).catch(() => undefined);
    }
    return [...found.values()].sort((a, b) => a.device.localeCompare(b.device));
  }

  /**
   * Sends `command` to one device (target), to each of a list, or to the fleet (null) and
   * collects answers until every expected device answered or the timeout. Named devices are
   * expected; a fleet-wide request expects `opts.expect` (else waits out the timeout).
   */
  async request(target: string | string[] | null, command: string, args: Record<string, unknown> = {}, opts: RequestOptions = {}): Promise<DeviceReply[]> {
    const transaction = randomBytes(8).toString('hex');
    const targets = target === null ? [null] : Array.isArray(target) ? target : [target];
    const bodyFor = (t: string | null): Record<string, unknown> => {
      const body = { ...args, transaction };
      return this.o.signingKey ? signPayload(this.o.signingKey, { target: t ?? FLEET_LEVEL, command }, body) : body;
    };
    const responses = `${this.base}/${typeof target === 'string' ? target : '+'}/response/${command}`;
    const replies = new Map<string, DeviceReply>();
    const assemblers = new Map<string, PartAssembler>();
    const t0 = Date.now();
    const expect = target !== null ? new Set(targets as string[]) : opts.expect ? new Set(opts.expect) : null;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const stop = this.listen((topic, payload, packet) => {
      const d = deviceOf(this.base, topic);
      if (!d || d.rest !== `response/${command}`) return;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(payload.toString());
      } catch {
        return;
      }
      const corr = packet.properties?.correlationData?.toString();
      if (message.transaction !== transaction && corr !== transaction) return;
      const assembler = assemblers.get(d.device) ?? new PartAssembler();
      assemblers.set(d.device, assembler);
      let r;
      try {
        r = assembler.add(message, payload.length);
      } catch (err) {
        r = { status: 'error' as const, data: null, error: (err as Error).message };
      }
      if (r === null) return; // more parts to come
      const reply: DeviceReply = { device: d.device, status: r.status === 'ok' ? 'ok' : 'error', data: r.data ?? null, error: r.error, ms: Date.now() - t0, bytes: assembler.bytes };
      assemblers.delete(d.device);
      opts.onReply?.(reply);
      replies.set(d.device, opts.onReply ? { ...reply, data: null } : reply);
      if (expect && [...expect].every((e) => replies.has(e))) done();
    });
    try {
      await this.subscribe([responses]);
      const props = (this.o.protocolVersion ?? 5) === 5 ? { correlationData: Buffer.from(transaction) } : undefined;
      const timer = setTimeout(done, opts.timeoutMs ?? 10_000);
      if (expect?.size === 0) done();
      await Promise.all(targets.map((t) => this.client.publishAsync(requestTopic(this.base, t, command), JSON.stringify(bodyFor(t)), { qos: 1, properties: props })));
      await finished;
      clearTimeout(timer);
    } finally {
      stop();
      await this.client.unsubscribeAsync(responses).catch(() => undefined);
    }
    return [...replies.values()].sort((a, b) => a.device.localeCompare(b.device));
  }

  /**
   * Streams status, metrics and events of one device or all. With a group, metrics and
   * events go through a shared subscription ($share/<group>/…), so watchers of one group
   * split the stream, which is how a consumer scales out on a clustered broker; status stays
   * a plain subscription, as retained messages are not sent to shared ones.
   */
  async watch(device: string | null, group: string | null, on: (device: string, kind: string, payload: unknown) => void): Promise<() => Promise<void>> {
    const dev = device ?? '+';
    const share = group ? `$share/${group}/` : '';
    const filters = [`${this.base}/${dev}/status`, `${share}${this.base}/${dev}/metrics`, `${share}${this.base}/${dev}/events`];
    const stop = this.listen((topic, payload) => {
      const d = deviceOf(this.base, topic);
      if (!d || !['status', 'metrics', 'events'].includes(d.rest)) return;
      let v: unknown;
      try {
        v = JSON.parse(payload.toString());
      } catch {
        v = payload.toString();
      }
      on(d.device, d.rest, v);
    });
    await this.subscribe(filters);
    return async () => {
      stop();
      await this.client.unsubscribeAsync(filters).catch(() => undefined);
    };
  }

  /** Publishes a retained document (signed when a key is set) for devices to read when they start. */
  async publishRetained(topic: string, command: string, doc: Record<string, unknown>): Promise<number> {
    const body = this.o.signingKey ? signPayload(this.o.signingKey, { target: FLEET_LEVEL, command }, doc) : doc;
    const text = JSON.stringify(body);
    await this.client.publishAsync(topic, text, { qos: 1, retain: true });
    return Buffer.byteLength(text);
  }

  async close(): Promise<void> {
    await this.client.endAsync().catch(() => undefined);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function connectError(url: string, err: unknown): CalibdError {
  const msg = err instanceof Error ? err.message : String(err);
  return new CalibdError('mqtt', `cannot connect to ${url}: ${msg}`, {
    value: url,
    hint: 'check --broker, the credentials and that the broker is running',
    cause: err,
  });
}

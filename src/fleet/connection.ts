// One MQTT connection that survives the broker going away, on mqtt.js with its own
// reconnect logic switched off (reconnectPeriod: 0): after a close we wait an exponential,
// jittered delay (Backoff) and call client.reconnect(). While disconnected nothing is handed
// to mqtt.js, whose offline queue is unbounded; telemetry goes into a BoundedQueue instead
// and is flushed, oldest first, on the next connect.
//
// Nothing here is awaited on the inference path: publish() returns at once.

import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from '../common/index.js';
import { readCredential } from '../service/credentials.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { BoundedQueue, type QueuedMessage } from './queue.js';


export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface ConnectionOptions {
  url: string;
  clientId: string;
  protocolVersion: 4 | 5;
  keepalive: number;
  username?: string;
  password?: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  will?: { topic: string; payload: string; qos: 0 | 1; retain: boolean };
  /** Topic filters (QoS 1) subscribed on every connect. */
  subscriptions?: string[];
  queueMax: number;
  backoff?: BackoffOptions;
  connectTimeoutMs?: number;
  logger?: Logger;
}

export interface ConnectionStats {
  connected: boolean;
  connects: number;
  reconnectAttempts: number;
  queued: number;
  queueMax: number;
  queueHighWater: number;
  dropped: number;
  lastError: string | null;
}

/**
 * The broker password: mqtt.passwordFile, else the systemd credential `mqtt-password`,
 * else $CALIBD_MQTT_PASSWORD. One trailing newline of a file is ignored.
 */
export function resolvePassword(o: { passwordFile?: string }, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (o.passwordFile) return readFileSync(o.passwordFile, 'utf8').replace(/\r?\n$/, '');
  const cred = readCredential('mqtt-password', env);
  if (cred !== null) return cred;
  const v = env.CALIBD_MQTT_PASSWORD;
  return v === undefined || v === '' ? undefined : v;
}

export function readTlsFiles(o: TlsFiles): ConnectionOptions['tls'] {
  if (!o.ca && !o.cert && !o.key) return undefined;
  return {
    ca: o.ca ? readFileSync(o.ca) : undefined,
    cert: o.cert ? readFileSync(o.cert) : undefined,
    key: o.key ? readFileSync(o.key) : undefined,
  };
}

export class FleetConnection extends EventEmitter {
  readonly client: MqttClient;
  private readonly queue: BoundedQueue<QueuedMessage>;
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private connects = 0;
  private lastError: string | null = null;
  private readonly log?: Logger;

  constructor(private readonly o: ConnectionOptions) {
    super();
    this.log = o.logger;
    this.queue = new BoundedQueue(o.queueMax);
    this.backoff = new Backoff(o.backoff);
    const opts: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepalive,
      clean: true,
      reconnectPeriod: 0, // we drive reconnects (see scheduleReconnect)
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      queueQoSZero: false,
      resubscribe: false, // subscribed again on each connect below
      manualConnect: true,
      username: o.username,
      password: o.password,
      ...(o.tls ?? {}),
      will: o.will ? { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: o.will.qos, retain: o.will.retain } : undefined,
    };
    this.client = mqtt.connect(o.url, opts);
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.onClose());
    this.client.on('error', (err) => {
      const text = err.message;
      if (text !== this.lastError) this.log?.warn({ err: text, url: redactUrl(o.url) }, 'mqtt error');
      this.lastError = text;
    });
    this.client.on('disconnect', (packet) => {
      // MQTT 5: the broker says why. 0x8E: another client connected with our client id.
      const code = packet.reasonCode;
      this.lastError = `broker disconnected us (reason ${code})`;
      this.log?.warn({ reasonCode: code, hint: code === 0x8e ? 'another client uses this client id (device id); each device needs its own' : undefined }, 'mqtt disconnect from broker');
    });
    this.client.on('message', (topic, payload, packet) => this.emit('message', topic, payload, packet as IPublishPacket));
  }

  start(): void {
    this.client.connect();
  }

  get connected(): boolean {
    return this.client.connected;
  }

  private onConnect(): void {
    this.connects++;
    this.backoff.reset();
    if (this.lastError !== null || this.connects > 1) this.log?.info({ url: redactUrl(this.o.url), connects: this.connects }, 'mqtt connected');
    this.lastError = null;
    const subs = this.o.subscriptions ?? [];
    if (subs.length) {
      this.client.subscribe(subs, { qos: 1 }, (err, granted) => {
        if (err) this.log?.warn({ err: err.message }, 'mqtt subscribe failed');
        for (const g of granted ?? []) if (g.qos >= 0x80) this.log?.warn({ topic: g.topic, code: g.qos }, 'mqtt subscription refused by the broker');
      });
    }
    this.emit('connect');
    const backlog = this.queue.drain();
    for (const m of backlog) this.publishNow(m);
  }

  private onClose(): void {
    if (this.stopping) return;
    this.emit('offline');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.timer || this.stopping) return;
    const delay = this.backoff.next();
    this.log?.debug?.({ delayMs: delay, attempt: this.backoff.attempts }, 'mqtt reconnect scheduled');
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopping || this.client.connected) return;
      this.client.reconnect();
    }, delay);
    this.timer.unref();
  }

  /**
   * Publishes now when connected; otherwise queues (bounded, oldest dropped) when `queue`
   * is set, else drops and counts. Never awaits.
   */
  publish(topic: string, payload: string, opts: { qos?: 0 | 1; retain?: boolean; properties?: IClientPublishOptions['properties']; queue?: boolean } = {}): void {
    const m: QueuedMessage = { topic, payload, qos: opts.qos ?? 0, retain: opts.retain ?? false, properties: opts.properties as Record<string, unknown> | undefined };
    if (this.client.connected) this.publishNow(m);
    else if (opts.queue === false) this.queue.dropped++;
    else this.queue.push(m);
  }

  private publishNow(m: QueuedMessage): void {
    const opts: IClientPublishOptions = { qos: m.qos, retain: m.retain };
    if (m.properties && this.o.protocolVersion === 5) opts.properties = m.properties as IClientPublishOptions['properties'];
    this.client.publish(m.topic, m.payload, opts, (err) => {
      if (err && !this.stopping) this.log?.warn({ topic: m.topic, err: err.message }, 'mqtt publish failed');
    });
  }

  /** Publishes `final` (e.g. the retained offline status) if connected, then disconnects. */
  async stop(final?: { topic: string; payload: string; qos: 0 | 1; retain: boolean }): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (final && this.client.connected) {
      await Promise.race([
        this.client.publishAsync(final.topic, final.payload, { qos: final.qos, retain: final.retain }).catch(() => undefined),
        sleep(2000),
      ]);
    }
    this.stopping = true;
    await Promise.race([this.client.endAsync(false).catch(() => undefined), sleep(2000)]);
    this.client.end(true);
  }

  stats(): ConnectionStats {
    return {
      connected: this.client.connected,
      connects: this.connects,
      reconnectAttempts: this.backoff.attempts,
      queued: this.queue.length,
      queueMax: this.queue.max,
      queueHighWater: this.queue.highWater,
      dropped: this.queue.dropped,
      lastError: this.lastError,
    };
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

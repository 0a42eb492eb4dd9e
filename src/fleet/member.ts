// A device's membership in the fleet: publishes its retained status (with an offline last
// will), periodic metrics and every agent event, and answers requests addressed to it or to
// the whole fleet. Everything is driven by timers and MQTT callbacks; the inference path
// only feeds counters and the latency recorder, and never waits for the broker.

import type { IPublishPacket } from 'mqtt';
import { CalibdError, calibdVersion } from '../common/index.js';
import type { CalibdConfig } from '../config/index.js';
import { readHealth, type Health } from '../health/index.js';
import { startEmbeddedBroker, EMBEDDED_DEFAULT_PORT, type EmbeddedBroker } from './broker.js';
import { commandNames, commands, isCommandName, runCommand, type CommandTarget } from '../agent/commands.js';
import { FleetConnection, readTlsFiles, redactUrl, resolvePassword, type ConnectionStats } from './connection.js';
import type { Logger } from '../common/index.js';
import type { BackoffOptions } from './backoff.js';
import { LatencyRecorder } from './latency.js';
import { SignatureVerifier } from './signing.js';
import { decodeRequest } from './request.js';
import { encodeResponse } from './payload.js';
import { deviceTopics, FLEET_LEVEL, type DeviceTopics } from './topics.js';

/** What the member reads from the agent (CalibrationAgent satisfies it). */
export interface FleetAgent extends CommandTarget {
  counts(): { inferences: number };
  readonly drift: { score(): number };
  readonly engine: { stats(): { inferences: number; errors: number } };
  on(event: 'event', listener: (e: { type: string; time: number; data: Record<string, unknown> }) => void): unknown;
  off(event: 'event', listener: (e: { type: string; time: number; data: Record<string, unknown> }) => void): unknown;
}

export interface FleetMemberOptions {
  /** Port of the embedded broker (url 'embedded'); default 1883, 0 = any free port. */
  embeddedPort?: number;
  /** Shared HMAC key: state-changing commands must be signed (see signing.ts). */
  signingKey?: Buffer;
  signingWindowMs?: number;
  backoff?: BackoffOptions;
  /** Filled by the daemon with each request's engine latency (the API's onInference hook). */
  latency?: LatencyRecorder;
  /** Injected in tests. */
  readHealth?: () => Promise<Health>;
  env?: NodeJS.ProcessEnv;
}


export interface ResponseBody {
  status: 'ok' | 'error';
  data: unknown;
  error?: string;
  transaction?: string | number;
}

export class FleetMember {
  readonly topics: DeviceTopics;
  private conn!: FleetConnection;
  private broker: EmbeddedBroker | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private readonly verifier: SignatureVerifier | null;
  readonly latency: LatencyRecorder;
  private lastTick = { time: Date.now(), inferences: 0, errors: 0 };
  private readonly startedAt = new Date().toISOString();
  private readonly onEvent = (e: { type: string; time: number; data: Record<string, unknown> }) => this.handleEvent(e);
  readonly requestsHandled = { ok: 0, error: 0 };

  private constructor(
    private readonly agent: FleetAgent,
    private readonly mqtt: NonNullable<CalibdConfig['mqtt']>,
    private readonly log: Logger,
    private readonly o: FleetMemberOptions,
  ) {
    this.topics = deviceTopics(mqtt.baseTopic, agent.config.deviceId);
    this.verifier = o.signingKey ? new SignatureVerifier(o.signingKey, o.signingWindowMs ?? 30_000) : null;
    this.latency = o.latency ?? new LatencyRecorder();
  }

  /** Starts the embedded broker if asked for, then connects in the background (never waits for the broker). */
  static async start(agent: FleetAgent, log: Logger, o: FleetMemberOptions = {}): Promise<FleetMember> {
    const mqtt = agent.config.mqtt;
    if (!mqtt) throw new CalibdError('config', 'mqtt is not configured');
    if (agent.config.deviceId === FLEET_LEVEL) {
      throw new CalibdError('config', `deviceId '${FLEET_LEVEL}' is reserved for fleet-wide requests`, { value: FLEET_LEVEL, hint: 'set deviceId to another name' });
    }
    const m = new FleetMember(agent, mqtt, log, o);
    await m.connect();
    return m;
  }

  private async connect(): Promise<void> {
    const c = this.mqtt;
    let url = c.url;
    let protocolVersion = c.protocolVersion as 4 | 5;
    if (url === 'embedded') {
      this.broker = await startEmbeddedBroker({ port: this.o.embeddedPort ?? EMBEDDED_DEFAULT_PORT });
      url = this.broker.url;
      if (protocolVersion === 5) protocolVersion = 4; // aedes speaks MQTT 3.1.1
      this.log.info({ url, protocolVersion }, 'embedded MQTT broker listening (loopback only, no authentication)');
    }
    const id = this.agent.config.deviceId;
    this.conn = new FleetConnection({
      url,
      clientId: id,
      protocolVersion,
      keepalive: c.keepalive,
      username: c.username,
      password: resolvePassword(c, this.o.env),
      tls: readTlsFiles(c),
      will: { topic: this.topics.status, payload: JSON.stringify(this.offlineStatus('connection lost')), qos: 1, retain: true },
      subscriptions: this.topics.requestFilters,
      queueMax: c.queueMax,
      backoff: this.o.backoff,
      logger: this.log,
    });
    this.conn.on('connect', () => this.publishStatus());
    this.conn.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      void this.handleRequest(topic, payload, packet);
    });
    this.agent.on('event', this.onEvent);
    this.lastTick = { time: Date.now(), inferences: this.agent.counts().inferences, errors: this.agent.engine.stats().errors };
    this.timer = setInterval(() => void this.tick(), c.metricsIntervalSec * 1000);
    this.timer.unref();
    this.conn.start();
    this.log.info({ url: redactUrl(url), clientId: id, protocolVersion, base: this.topics.prefix }, 'fleet member started');
  }

  get connection(): FleetConnection {
    return this.conn;
  }

  mqttStats(): ConnectionStats & { requests: { ok: number; error: number } } {
    return { ...this.conn.stats(), requests: { ...this.requestsHandled } };
  }

  private onlineStatus(): Record<string, unknown> {
    const s = this.agent.status() as { model?: { name?: string; sha256?: string }; serving?: string; calibration?: { version?: number; method?: string; createdAt?: string | null } };
    return {
      state: 'online',
      deviceId: this.agent.config.deviceId,
      group: this.agent.config.group,
      calibdVersion: calibdVersion(),
      model: { name: s.model?.name, sha256: s.model?.sha256 },
      serving: s.serving,
      calibration: { version: s.calibration?.version ?? 0, method: s.calibration?.method ?? 'fp32', createdAt: s.calibration?.createdAt ?? null },
      since: this.startedAt,
      time: new Date().toISOString(),
    };
  }

  private offlineStatus(reason: string): Record<string, unknown> {
    return { state: 'offline', deviceId: this.agent.config.deviceId, calibdVersion: calibdVersion(), reason, since: this.startedAt };
  }

  /** Retained QoS 1; not queued while offline (it is published again on every connect). */
  private publishStatus(): void {
    this.conn.publish(this.topics.status, JSON.stringify(this.onlineStatus()), { qos: 1, retain: true, queue: false });
  }

  private handleEvent(e: { type: string; time: number; data: Record<string, unknown> }): void {
    this.conn.publish(this.topics.events, JSON.stringify({ type: e.type, time: new Date(e.time).toISOString(), data: e.data }), { qos: 1 });
    if (e.type === 'calibration.accepted' || e.type === 'rollback') this.publishStatus();
  }

  /** One metrics message; exposed for tests and `scripts/broker-outage.ts`. */
  async metrics(): Promise<Record<string, unknown>> {
    const now = Date.now();
    const inferences = this.agent.counts().inferences;
    const errors = this.agent.engine.stats().errors;
    const dt = Math.max(0.001, (now - this.lastTick.time) / 1000);
    const lat = this.latency.take();
    const health = await (this.o.readHealth ?? (() => readHealth({ timeoutMs: 2000 })))();
    const s = this.agent.status() as { calibration?: { version?: number; method?: string; createdAt?: string | null } };
    const rows = this.agent.buffer.count();
    const created = s.calibration?.createdAt ? Date.parse(s.calibration.createdAt) : null;
    const out = {
      time: new Date(now).toISOString(),
      intervalSec: round(dt, 3),
      inference: { total: inferences, count: inferences - this.lastTick.inferences, ratePerSec: round((inferences - this.lastTick.inferences) / dt, 3), errors: errors - this.lastTick.errors, errorsTotal: errors },
      latencyMs: { p50: lat.p50, p95: lat.p95, p99: lat.p99, max: lat.max, samples: lat.samples },
      buffer: { rows, maxRows: this.agent.config.sampling.maxRows, fill: round(rows / this.agent.config.sampling.maxRows, 4) },
      drift: { score: round(this.agent.drift.score(), 4), threshold: this.agent.config.recalibration.driftThreshold },
      calibration: { version: s.calibration?.version ?? 0, method: s.calibration?.method ?? 'fp32', ageSec: created === null ? null : Math.round((now - created) / 1000) },
      health: { cpuLoadPct: nullableRound(health.cpuLoadPct), memUsedBytes: health.memUsedBytes, memTotalBytes: health.memTotalBytes, temperatureC: nullableRound(health.temperatureC), rssBytes: health.rssBytes },
      mqtt: this.conn.stats(),
    };
    this.lastTick = { time: now, inferences, errors };
    return out;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const m = await this.metrics();
      this.conn.publish(this.topics.metrics, JSON.stringify(m), { qos: 0 });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'metrics failed');
    } finally {
      this.ticking = false;
    }
  }

  private respond(command: string, packet: IPublishPacket, body: ResponseBody): void {
    const props = packet.properties;
    const wanted = props?.responseTopic;
    // The ACL lets a device write only under its own prefix; a response topic elsewhere
    // would be refused by the broker, so it is answered on the default topic instead.
    const topic = wanted && wanted.startsWith(this.topics.prefix) && !/[+#]/.test(wanted) ? wanted : this.topics.response(command);
    const properties = props?.correlationData ? { correlationData: props.correlationData } : undefined;
    // A large answer (a device's statistics) goes compressed, in parts (payload.ts).
    for (const message of encodeResponse(body)) this.conn.publish(topic, message, { qos: 1, properties });
    this.requestsHandled[body.status]++;
  }

  async handleRequest(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const request = this.topics.requestOf(topic);
    if (request === null || request.command === '') return;
    const { command } = request;
    let transaction: string | number | undefined;
    const fail = (error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      const data = e instanceof CalibdError ? { code: e.code, ...(e.hint ? { hint: e.hint } : {}) } : { code: 'internal' };
      if (!(e instanceof CalibdError)) this.log.warn({ err: e.message, command }, 'mqtt command failed unexpectedly');
      this.respond(command, packet, { status: 'error', data, error: e.message, ...(transaction !== undefined ? { transaction } : {}) });
    };
    try {
      const decoded = decodeRequest(payload);
      const { body, fields } = decoded;
      transaction = decoded.transaction;
      if (!isCommandName(command)) {
        throw new CalibdError('unknown-command', `unknown command '${command}'`, { value: command, hint: `commands: ${commandNames.join(', ')}` });
      }
      if (this.verifier && (commands[command].mutating || body.sig !== undefined)) {
        const v = this.verifier.verify(request, body);
        if (!v.ok) {
          this.log.warn({ command, topic, reason: v.reason }, 'unsigned or invalid signed command refused');
          throw new CalibdError('unauthorized', `command refused: ${v.reason}`, { hint: 'sign the request with the fleet key (calibd fleet --signing-key-file)' });
        }
      }
      const data = await runCommand(command, this.agent, fields);
      const extra = command === 'status' ? { mqtt: this.mqttStats() } : {};
      this.respond(command, packet, { status: 'ok', data: command === 'status' ? { ...(data as object), ...extra } : data, ...(transaction !== undefined ? { transaction } : {}) });
    } catch (err) {
      fail(err);
    }
  }

  /** Publishes the retained offline status, disconnects, and stops the embedded broker. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.agent.off('event', this.onEvent);
    await this.conn?.stop({ topic: this.topics.status, payload: JSON.stringify(this.offlineStatus('shutdown')), qos: 1, retain: true });
    await this.broker?.close();
  }
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function nullableRound(x: number | null): number | null {
  return x === null ? null : round(x, 1);
}

// What every `calibd fleet …` subcommand shares: the connection options and where the
// broker comes from, and the table every answer is printed as.

import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/index.js';
import { nonNegativeInt } from './args.js';
import { OptionError } from '../common/errors.js';
import { FleetClient, readSigningKey, readTlsFiles, resolvePassword, type DeviceReply } from '../fleet/index.js';

export interface ConnOpts {
  broker?: string;
  config?: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  cert?: string;
  key?: string;
  protocol?: string;
  base: string;
  signingKeyFile?: string;
  timeout: number;
  json?: boolean;
}

/** The config a device runs with when none is given: the one `npm start` serves. */
const BUNDLED_CONFIG = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

/**
 * The broker a command talks to, and where that came from. Without --broker it is the one
 * the device's config names (the environment included), so an operator on the device needs
 * no flag; the embedded broker is reached on loopback at its configured port.
 */
export function brokerOf(o: ConnOpts): { url: string; from: string } {
  if (o.broker) return { url: o.broker, from: '--broker' };
  const env = process.env.CALIBD_MQTT_URL?.trim();
  if (env) {
    if (env === 'embedded') throw new OptionError("CALIBD_MQTT_URL=embedded is the daemon's own broker", { value: env, hint: 'use --broker mqtt://127.0.0.1:1883' });
    return { url: env, from: 'CALIBD_MQTT_URL' };
  }
  const file = o.config ?? BUNDLED_CONFIG;
  const from = file;
  // The file's broker alone: the operator's environment names credentials, not a device.
  const mqtt = loadConfig({ file, env: {} }).mqtt;
  if (!mqtt) throw new OptionError(`no broker: ${from} turns MQTT off`, { value: from, hint: 'use --broker mqtt://host:1883' });
  if (mqtt.url !== 'embedded') return { url: mqtt.url, from };
  if (mqtt.embeddedPort === 0) {
    throw new OptionError(`no broker: the embedded broker of ${from} listens on any free port (mqtt.embeddedPort: 0)`, { value: 0, hint: 'use --broker mqtt://127.0.0.1:PORT' });
  }
  return { url: `mqtt://127.0.0.1:${mqtt.embeddedPort}`, from };
}

export function connection(o: ConnOpts): Promise<FleetClient> {
  const { url, from } = brokerOf(o);
  // Said on stderr, so --json output stays one document.
  if (from !== '--broker') process.stderr.write(`calibd fleet: broker ${url} (from ${from})\n`);
  const keyFile = o.signingKeyFile ?? process.env.CALIBD_MQTT_SIGNING_KEY_FILE;
  return FleetClient.connect({
    url,
    baseTopic: o.base,
    protocolVersion: o.protocol === '4' ? 4 : o.protocol === '5' ? 5 : undefined,
    username: o.username ?? process.env.CALIBD_MQTT_USERNAME,
    password: resolvePassword({ passwordFile: o.passwordFile }),
    tls: readTlsFiles({ ca: o.ca, cert: o.cert, key: o.key }),
    signingKey: keyFile ? readSigningKey(keyFile) : undefined,
  });
}

export function withConnection(cmd: Command, timeoutMs: number): Command {
  return cmd
    .option('--broker <url>', 'broker URL (default: $CALIBD_MQTT_URL, else the mqtt section of --config)')
    .option('--config <file>', "the device config whose broker to use without --broker (default: calibd's config/default.yaml)")
    .option('--username <name>', 'broker user (default $CALIBD_MQTT_USERNAME)')
    .option('--password-file <file>', 'file holding the broker password (default $CALIBD_MQTT_PASSWORD)')
    .option('--ca <file>', 'CA certificate (mqtts://)')
    .option('--cert <file>', 'client certificate')
    .option('--key <file>', 'client key')
    .addOption(new Option('--protocol <version>', 'MQTT protocol version (default: 5, falling back to 3.1.1)').choices(['4', '5']))
    .option('--base <topic>', 'base topic', 'calibd')
    .option('--signing-key-file <file>', 'sign commands with this shared key (default $CALIBD_MQTT_SIGNING_KEY_FILE)')
    .option('--timeout <ms>', 'how long to wait for answers', nonNegativeInt, timeoutMs)
    .option('--json', 'print JSON');
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

export function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function replyRows(replies: DeviceReply[], summarise: (data: any) => string): Record<string, unknown>[] {
  return replies.map((r) => ({ device: r.device, status: r.status, result: r.status === 'ok' ? summarise(r.data) : failureLine(r), ms: r.ms }));
}

/** A device's error as the CLI prints every error: the message, then what to do. */
export function failureLine(r: DeviceReply): string {
  const hint = (r.data as { hint?: unknown } | null)?.hint;
  return typeof hint === 'string' && hint ? `${r.error}: ${hint}` : (r.error ?? 'error');
}

/** Prints replies; exit code 1 when a device answered with an error or did not answer. */
export function printReplies(o: ConnOpts, replies: DeviceReply[], expected: string[], summarise: (data: any) => string): number {
  const missing = expected.filter((d) => !replies.some((r) => r.device === d));
  if (o.json) process.stdout.write(JSON.stringify({ replies, missing }, null, 2) + '\n');
  else {
    const rows = replyRows(replies, summarise);
    for (const d of missing) rows.push({ device: d, status: 'timeout', result: `no answer in ${o.timeout} ms`, ms: null });
    process.stdout.write(rows.length ? table(rows, ['device', 'status', 'result', 'ms']) : 'no device answered\n');
  }
  return missing.length || replies.some((r) => r.status !== 'ok') || replies.length === 0 ? 1 : 0;
}

export async function onlineDevices(c: FleetClient): Promise<string[]> {
  return (await c.devices()).filter((d) => d.state === 'online').map((d) => d.device);
}


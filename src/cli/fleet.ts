// `calibd fleet …`: the operator's view of a fleet over MQTT. Each subcommand connects,
// does one thing, waits for answers up to --timeout and prints a table (or JSON with
// --json). The broker comes from --broker, else CALIBD_MQTT_URL, else the mqtt section of
// --config (default: the bundled config/default.yaml, whose embedded broker listens on
// 127.0.0.1:1883); credentials from flags or CALIBD_MQTT_USERNAME, CALIBD_MQTT_PASSWORD
// (or --password-file), CALIBD_MQTT_SIGNING_KEY_FILE.

import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/index.js';
import { RANGE_METHODS } from '../calibration/methods.js';
import { nonNegativeInt } from './args.js';
import { OptionError } from '../common/errors.js';
import { FleetClient, readSigningKey, readTlsFiles, resolvePassword, type DeviceReply } from '../fleet/index.js';

interface ConnOpts {
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
function brokerOf(o: ConnOpts): { url: string; from: string } {
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

function connection(o: ConnOpts): Promise<FleetClient> {
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

function withConnection(cmd: Command, timeoutMs: number): Command {
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

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function replyRows(replies: DeviceReply[], summarise: (data: any) => string): Record<string, unknown>[] {
  return replies.map((r) => ({ device: r.device, status: r.status, result: r.status === 'ok' ? summarise(r.data) : failureLine(r), ms: r.ms }));
}

/** A device's error as the CLI prints every error: the message, then what to do. */
function failureLine(r: DeviceReply): string {
  const hint = (r.data as { hint?: unknown } | null)?.hint;
  return typeof hint === 'string' && hint ? `${r.error}: ${hint}` : (r.error ?? 'error');
}

/** Prints replies; exit code 1 when a device answered with an error or did not answer. */
function printReplies(o: ConnOpts, replies: DeviceReply[], expected: string[], summarise: (data: any) => string): number {
  const missing = expected.filter((d) => !replies.some((r) => r.device === d));
  if (o.json) process.stdout.write(JSON.stringify({ replies, missing }, null, 2) + '\n');
  else {
    const rows = replyRows(replies, summarise);
    for (const d of missing) rows.push({ device: d, status: 'timeout', result: `no answer in ${o.timeout} ms`, ms: null });
    process.stdout.write(rows.length ? table(rows, ['device', 'status', 'result', 'ms']) : 'no device answered\n');
  }
  return missing.length || replies.some((r) => r.status !== 'ok') || replies.length === 0 ? 1 : 0;
}

async function onlineDevices(c: FleetClient): Promise<string[]> {
  return (await c.devices()).filter((d) => d.state === 'online').map((d) => d.device);
}

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function fleetCommand(setExit: (code: number) => void): Command {
  const fleet = new Command('fleet').description('operate a fleet of calibd devices over MQTT');

  withConnection(fleet.command('ls').description('list devices from their retained status'), 2000).action(async (o: ConnOpts) => {
    const c = await connection(o);
    try {
      const devices = await c.devices({ maxWaitMs: o.timeout });
      if (o.json) process.stdout.write(JSON.stringify(devices, null, 2) + '\n');
      else {
        const rows = devices.map((d: any) => ({ device: d.device, state: d.state, version: d.calibdVersion, model: d.model?.name, calibration: d.calibration ? `v${d.calibration.version} ${d.calibration.method}` : undefined, serving: d.serving, since: d.since }));
        process.stdout.write(rows.length ? table(rows, ['device', 'state', 'version', 'model', 'calibration', 'serving', 'since']) : 'no devices\n');
      }
    } finally {
      await c.close();
    }
  });

  withConnection(fleet.command('watch').description('stream status, metrics and events').argument('[device]', 'one device (default: all)'), 0)
    .option('--group <name>', 'shared-subscription group: watchers with the same group split the metrics/events stream')
    .action(async (device: string | undefined, o: ConnOpts & { group?: string }) => {
      const c = await connection(o);
      // Without --group every watcher sees everything (and brokers without shared
      // subscriptions, like the embedded one, work too).
      const stop = await c.watch(device ?? null, o.group ?? null, (dev, kind, v: any) => {
        if (o.json) return void process.stdout.write(JSON.stringify({ device: dev, kind, payload: v }) + '\n');
        const t = new Date().toISOString().slice(11, 19);
        let text: string;
        if (kind === 'metrics') text = `${v.inference?.ratePerSec}/s p50 ${v.latencyMs?.p50} p99 ${v.latencyMs?.p99} ms, drift ${v.drift?.score}, calib v${v.calibration?.version}, buffer ${v.buffer?.rows}, rss ${Math.round((v.health?.rssBytes ?? 0) / 2 ** 20)} MiB`;
        else if (kind === 'events') text = `${v.type} ${JSON.stringify(v.data)}`;
        else text = `${v.state}${v.calibration ? ` v${v.calibration.version} ${v.calibration.method}` : ''}${v.reason ? ` (${v.reason})` : ''}`;
        process.stdout.write(`${t} ${dev.padEnd(16)} ${kind.padEnd(7)} ${text}\n`);
      });
      const ms = o.timeout;
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        if (ms > 0) setTimeout(resolve, ms);
      });
      await stop();
      await c.close();
    });

  withConnection(fleet.command('recalibrate').description('recalibrate one device or all').argument('[device]', 'device id'), 60_000)
    .option('--all', 'every device (fleet-wide request)')
    .addOption(new Option('--method <method>', 'range estimator').choices(RANGE_METHODS))
    .option('--full', 'rebuild statistics from the whole buffer')
    .action(async (device: string | undefined, o: ConnOpts & { all?: boolean; method?: string; full?: boolean }) => {
      if (!device === !o.all) throw new OptionError('give a device id or --all (not both)');
      const c = await connection(o);
      try {
        const expected = o.all ? await onlineDevices(c) : [device!];
        const args = { ...(o.method ? { method: o.method } : {}), ...(o.full ? { full: true } : {}) };
        const replies = await c.request(o.all ? null : device!, 'recalibrate', args, { timeoutMs: o.timeout, expect: expected });
        setExit(printReplies(o, replies, expected, (d) => `v${d.version} ${d.state}: ${d.reason}`));
      } finally {
        await c.close();
      }
    });

  withConnection(fleet.command('rollback').description('roll a device back to an earlier calibration').argument('<device>').argument('[version]', 'version (default: the previous accepted one)', nonNegativeInt), 30_000).action(
    async (device: string, version: number | undefined, o: ConnOpts) => {
      const c = await connection(o);
      try {
        const replies = await c.request(device, 'rollback', version === undefined ? {} : { version }, { timeoutMs: o.timeout });
        setExit(printReplies(o, replies, [device], (d) => `active v${d.version}`));
      } finally {
        await c.close();
      }
    },
  );

  withConnection(
    fleet
      .command('config')
      .description('read or change a device\'s runtime config')
      .argument('<device>')
      .addArgument(new Command().createArgument('<action>', 'get or set').choices(['get', 'set']))
      .argument('[assignments...]', 'get: [key]; set: key=value (value is JSON, else a string)'),
    10_000,
  ).action(async (device: string, action: 'get' | 'set', assignments: string[], o: ConnOpts) => {
    const c = await connection(o);
    try {
      if (action === 'get') {
        if (assignments.length > 1) throw new OptionError('config get takes at most one key');
        const replies = await c.request(device, 'config/get', assignments[0] ? { key: assignments[0] } : {}, { timeoutMs: o.timeout });
        setExit(printReplies(o, replies, [device], (d) => (d.tunable && typeof d.tunable === 'object' ? Object.entries(d.tunable).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') : `${d.key}=${JSON.stringify(d.value)}`)));
        return;
      }
      if (assignments.length === 0) throw new OptionError('config set needs key=value');
      let code = 0;
      const all: DeviceReply[] = [];
      for (const a of assignments) {
        const eq = a.indexOf('=');
        if (eq <= 0) throw new OptionError(`'${a}' is not key=value`, { value: a });
        const replies = await c.request(device, 'config/set', { key: a.slice(0, eq), value: parseValue(a.slice(eq + 1)) }, { timeoutMs: o.timeout });
        all.push(...replies);
        if (replies.length === 0 || replies.some((r) => r.status !== 'ok')) code = 1;
        if (code) break; // stop at the first refusal: later keys stay as they were
      }
      const printed = printReplies(o, all, [device], (d) => `${d.key}=${JSON.stringify(d.value)} (was ${JSON.stringify(d.previous)})`);
      setExit(code || printed);
    } finally {
      await c.close();
    }
  });

  return fleet;
}

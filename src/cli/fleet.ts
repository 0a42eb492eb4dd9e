// `calibd fleet …`: the operator's view of a fleet over MQTT. Each subcommand connects,
// does one thing, waits for answers up to --timeout and prints a table (or JSON with
// --json). The broker comes from --broker, else CALIBD_MQTT_URL, else the mqtt section of
// --config (default: the bundled config/default.yaml, whose embedded broker listens on
// 127.0.0.1:1883); credentials from flags or CALIBD_MQTT_USERNAME, CALIBD_MQTT_PASSWORD
// (or --password-file), CALIBD_MQTT_SIGNING_KEY_FILE.

import { Command, Option } from 'commander';
import { RANGE_METHODS } from '../calibration/methods.js';
import { nonNegativeInt } from './args.js';
import { OptionError } from '../common/errors.js';
import type { DeviceReply } from '../fleet/index.js';
import { connection, onlineDevices, printReplies, table, withConnection, type ConnOpts } from './fleet-io.js';
import { addFleetCalibration } from './fleet-calibrate.js';

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function fleetCommand(setExit: (code: number) => void): Command {
  const fleet = new Command('fleet').description('operate a fleet of calibd devices over MQTT');
  for (const add of [addList, addWatch, addRecalibrate, addRollback, addConfig, addFleetCalibration]) add(fleet, setExit);
  return fleet;
}

/** `fleet ls`: devices and their retained status. */
function addList(fleet: Command, setExit: (code: number) => void): void {
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
}

/** `fleet watch`: status, metrics and events as they come. */
function addWatch(fleet: Command, setExit: (code: number) => void): void {
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
}

/** `fleet recalibrate`: one device or all. */
function addRecalibrate(fleet: Command, setExit: (code: number) => void): void {
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
}

/** `fleet rollback`: a device back to an earlier version. */
function addRollback(fleet: Command, setExit: (code: number) => void): void {
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
}

/** `fleet config get|set`: a device's runtime config. */
function addConfig(fleet: Command, setExit: (code: number) => void): void {
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
}

// `calibd fleet stats` and `calibd fleet calibrate`: a calibration for a whole fleet from
// its devices' statistics, without any of their inputs. Statistics are collected over MQTT,
// merged exactly here, turned into ranges, and sent back in an `apply` command; each device
// builds, validates and gates the candidate itself. The result is also retained on the
// broker for devices that start with `firstBoot: fleet`.

import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { OptionError, errorMessage } from '../common/errors.js';
import { RANGE_METHODS, type RangeMethod } from '../calibration/methods.js';
import { StatisticsMerger, fleetCalibration, parseStatistics, type FleetCalibration, type StatisticsBundle } from '../calibration/index.js';
import { fleetCalibrationCommand, fleetCalibrationTopic, type DeviceReply, type FleetClient } from '../fleet/index.js';
import { nonNegativeNumber } from './args.js';
import { connection, table, withConnection, type ConnOpts } from './fleet-io.js';

interface Selection {
  all?: boolean;
  group?: string;
  modelSha?: string;
}

/** One device's part in a fleet operation, as printed. */
interface DeviceRow {
  device: string;
  state: 'merged' | 'skipped' | 'accepted' | 'rejected' | 'unchanged' | 'error' | 'timeout';
  samples?: number;
  bytes?: number;
  version?: number;
  figures?: Record<string, number>;
  reason?: string;
}

/** Refuses, before connecting, a command that names devices and --all or --group too (or none). */
function checkSelection(named: string[], s: Selection): void {
  const given = [named.length > 0, Boolean(s.all), s.group !== undefined].filter(Boolean).length;
  if (given !== 1) throw new OptionError('name devices, or give --all or --group G (one of the three)', { value: { devices: named, all: Boolean(s.all), group: s.group ?? null }, hint: 'e.g. calibd fleet calibrate --all' });
}

/** The devices a command addresses: those named, or every online one (of a group). */
async function chooseDevices(c: FleetClient, named: string[], s: Selection): Promise<string[]> {
  if (named.length) return named;
  const online = (await c.devices()).filter((d) => d.state === 'online');
  return online.filter((d) => s.group === undefined || d.group === s.group).map((d) => d.device);
}

interface Collected {
  rows: DeviceRow[];
  /** Statistics of the devices that can merge, and their merge. */
  merged: StatisticsBundle | null;
  mergedFrom: string[];
  bytes: number;
}

/**
 * Asks each device for its statistics and merges them as they arrive; the merge kept is of
 * the model most devices serve (or --model-sha), and the others are listed with the reason.
 */
async function collect(c: FleetClient, devices: string[], o: ConnOpts & Selection): Promise<Collected> {
  const merger = new StatisticsMerger();
  const rows: DeviceRow[] = [];
  const samples = new Map<string, { samples: number; bytes: number }>();
  const replies = await c.request(devices, 'stats', {}, {
    timeoutMs: o.timeout,
    onReply: (r) => {
      if (r.status !== 'ok') return void rows.push({ device: r.device, state: 'error', reason: r.error, bytes: r.bytes });
      try {
        const b = parseStatistics(r.data, `statistics of ${r.device}`);
        samples.set(r.device, { samples: b.sampleCount, bytes: r.bytes });
        merger.add(b);
      } catch (err) {
        rows.push({ device: r.device, state: 'error', reason: errorMessage(err), bytes: r.bytes });
      }
    },
  });
  for (const d of devices) if (!replies.some((r) => r.device === d)) rows.push({ device: d, state: 'timeout', reason: `no answer in ${o.timeout} ms` });
  const { merged, skipped } = merger.result(o.modelSha);
  for (const s of skipped) rows.push({ device: s.device, state: 'skipped', reason: s.reason, ...samples.get(s.device) });
  for (const d of merged?.devices ?? []) rows.push({ device: d, state: 'merged', ...samples.get(d) });
  return { rows: sortRows(rows), merged, mergedFrom: merged?.devices ?? [], bytes: replies.reduce((a, r) => a + r.bytes, 0) };
}

function sortRows(rows: DeviceRow[]): DeviceRow[] {
  return rows.sort((a, b) => a.device.localeCompare(b.device));
}

function printRows(rows: DeviceRow[], columns: string[]): void {
  const flat = rows.map((r) => ({ ...r, result: resultOf(r) }));
  process.stdout.write(rows.length ? table(flat, columns) : 'no device answered\n');
}

function resultOf(r: DeviceRow): string {
  // The device's gate reason already says the metric against the active calibration.
  return [r.version !== undefined ? `v${r.version}` : '', r.reason].filter(Boolean).join(': ');
}

/** Applies `calibration` on each device; returns a row per device. */
async function apply(c: FleetClient, devices: string[], calibration: FleetCalibration, margin: number, timeoutMs: number): Promise<DeviceRow[]> {
  const replies = await c.request(devices, 'apply', { calibration, margin }, { timeoutMs });
  const rows = replies.map((r: DeviceReply): DeviceRow => {
    if (r.status !== 'ok') return { device: r.device, state: 'error', reason: r.error };
    const d = r.data as { version: number; state: 'accepted' | 'rejected' | 'unchanged'; figures: Record<string, number>; reason?: string };
    return { device: r.device, state: d.state, version: d.version, figures: d.figures, reason: d.reason };
  });
  for (const d of devices) if (!replies.some((r) => r.device === d)) rows.push({ device: d, state: 'timeout', reason: `no answer in ${timeoutMs} ms` });
  return sortRows(rows);
}

export function addFleetCalibration(fleet: Command, setExit: (code: number) => void): void {
  withConnection(fleet.command('stats').description("save devices' calibration statistics (histograms, never inputs), merged exactly").argument('[devices...]', 'device ids'), 30_000)
    .option('--all', 'every online device')
    .option('--group <name>', 'every online device of a group (config key group)')
    .option('--model-sha <sha256>', 'keep devices serving this model (default: the model most of them serve)')
    .option('--out <file>', 'write the merged statistics here (JSON; what `calibd calibrate --stats` reads)')
    .action(async (named: string[], o: ConnOpts & Selection & { out?: string }) => {
      checkSelection(named, o);
      const c = await connection(o);
      try {
        const devices = await chooseDevices(c, named, o);
        const got = await collect(c, devices, o);
        if (o.out && got.merged) writeFileSync(o.out, JSON.stringify(got.merged));
        if (o.json) process.stdout.write(JSON.stringify({ devices: got.rows, merged: got.mergedFrom, bytes: got.bytes, out: o.out ?? null }, null, 2) + '\n');
        else {
          printRows(got.rows, ['device', 'state', 'samples', 'bytes', 'result']);
          if (o.out) process.stdout.write(got.merged ? `wrote ${o.out}: ${got.merged.tensors.length} tensors, ${got.merged.sampleCount} samples from ${got.mergedFrom.length} devices\n` : `nothing written: no device had statistics to merge\n`);
        }
        setExit(got.merged ? 0 : 1);
      } finally {
        await c.close();
      }
    });

  withConnection(fleet.command('calibrate').description("one calibration from the merged statistics of many devices, applied and gated on each").argument('[devices...]', 'device ids'), 120_000)
    .option('--all', 'every online device')
    .option('--group <name>', 'every online device of a group (config key group)')
    .option('--model-sha <sha256>', 'calibrate the devices serving this model (default: the model most of them serve)')
    .addOption(new Option('--method <method>', "range estimator on the merged statistics (default: the devices' own)").choices(RANGE_METHODS))
    .option('--margin <points>', "metric points a device's gate lets the fleet calibration lose against its active one", nonNegativeNumber, 0.5)
    .option('--no-publish', 'do not retain the result on the broker for devices starting with firstBoot: fleet')
    .action(async (named: string[], o: ConnOpts & Selection & { method?: RangeMethod; margin: number; publish: boolean }) => {
      checkSelection(named, o);
      const started = Date.now();
      const c = await connection(o);
      try {
        const devices = await chooseDevices(c, named, o);
        const got = await collect(c, devices, o);
        if (!got.merged) {
          if (o.json) process.stdout.write(JSON.stringify({ devices: got.rows, calibration: null }, null, 2) + '\n');
          else printRows(got.rows, ['device', 'state', 'samples', 'result']);
          process.stderr.write('calibd fleet calibrate: no device had statistics to merge; nothing applied\n');
          return setExit(1);
        }
        const calibration = fleetCalibration(got.merged, o.method);
        const applied = await apply(c, got.mergedFrom, calibration, o.margin, o.timeout);
        const retainedBytes = o.publish
          ? await c.publishRetained(fleetCalibrationTopic(c.base, calibration.sourceModelSha256), fleetCalibrationCommand(calibration.sourceModelSha256), { ...calibration })
          : 0;
        const rows = sortRows([...got.rows.filter((r) => r.state !== 'merged'), ...applied.map((r) => ({ ...r, samples: got.rows.find((g) => g.device === r.device)?.samples }))]);
        const summary = { method: calibration.method, devices: calibration.devices.length, sampleCount: calibration.sampleCount, tensors: calibration.ranges.length, statsBytes: got.bytes, retainedBytes, ms: Date.now() - started };
        if (o.json) process.stdout.write(JSON.stringify({ calibration: summary, devices: rows }, null, 2) + '\n');
        else {
          printRows(rows, ['device', 'state', 'samples', 'result']);
          process.stdout.write(`fleet calibration: ${summary.method} on ${summary.sampleCount} samples of ${summary.devices} devices, ${summary.tensors} tensors; statistics ${kib(summary.statsBytes)} KiB over MQTT; ${summary.ms} ms${retainedBytes ? '; retained for firstBoot: fleet' : ''}\n`);
        }
        setExit(rows.some((r) => r.state === 'error' || r.state === 'timeout') ? 1 : 0);
      } finally {
        await c.close();
      }
    });
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}

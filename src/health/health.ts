// Device health for status and telemetry: CPU load, memory, SoC temperature, and the
// daemon's own footprint. Read through the `systeminformation` package, which knows the
// Raspberry Pi and Jetson sensor paths so we do not have to.
//
// Health is advisory: a probe that fails, hangs or is unsupported becomes null and the
// report still resolves, because a daemon must never stop serving over a thermometer.

import { CalibdError } from '../common/errors.js';

export interface Health {
  /** Whole-machine CPU load in percent, since the previous reading (the first: since boot). */
  cpuLoadPct: number | null;
  /** Memory in real use, excluding buffers and page cache (what the OOM killer cares about). */
  memUsedBytes: number | null;
  memTotalBytes: number | null;
  /** Main CPU/SoC temperature; null when the board exposes no sensor. */
  temperatureC: number | null;
  /** Resident set of this process. */
  rssBytes: number;
  /** Seconds since this process started (restarts show up here, unlike the OS uptime). */
  uptimeSec: number;
}

/** The part of the systeminformation API we use; declared here so the package stays optional. */
export interface SystemInformationLike {
  currentLoad(): Promise<{ currentLoad: number }>;
  mem(): Promise<{ total: number; used: number; active?: number; available?: number }>;
  cpuTemperature(): Promise<{ main: number | null }>;
}

/** A health probe failed; logged by callers that care, never thrown out of readHealth. */
export class HealthError extends CalibdError {
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('health', message, opts);
  }
}

export interface ReadHealthOptions {
  /** Where systeminformation comes from; tests inject fakes here. */
  load?: () => Promise<SystemInformationLike>;
  /** Per-probe bound: some probes shell out, and a hung one must not stall telemetry. */
  timeoutMs?: number;
  /** Told about each probe that failed (e.g. a pino logger's warn). */
  onError?: (err: HealthError) => void;
}

const PACKAGE = 'systeminformation';
let cached: Promise<SystemInformationLike> | undefined;

async function loadSystemInformation(): Promise<SystemInformationLike> {
  // A computed specifier keeps TypeScript from demanding the package at build time; it is
  // CommonJS, so its API is the default export under ESM.
  cached ??= import(PACKAGE as string).then((mod: { default?: SystemInformationLike } & SystemInformationLike) => mod.default ?? mod);
  try {
    return await cached;
  } catch (err) {
    cached = undefined; // let a later call retry, e.g. after the package is installed
    throw new HealthError(`cannot load ${PACKAGE}`, { hint: `npm install ${PACKAGE}`, value: PACKAGE, cause: err });
  }
}

function finite(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

async function probe<T>(name: string, timeoutMs: number, fn: () => Promise<T>, onError?: (e: HealthError) => void): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HealthError(`${name} timed out after ${timeoutMs} ms`, { value: name })), timeoutMs);
      timer.unref();
    });
    return await Promise.race([fn(), timeout]);
  } catch (err) {
    onError?.(err instanceof HealthError ? err : new HealthError(`${name} failed`, { value: name, cause: err }));
    return null;
  } finally {
    clearTimeout(timer);
  }
}

export async function readHealth(opts: ReadHealthOptions = {}): Promise<Health> {
  const timeoutMs = opts.timeoutMs ?? 3_000;
  const rssBytes = process.memoryUsage.rss();
  const uptimeSec = process.uptime();
  let si: SystemInformationLike;
  try {
    si = await (opts.load ?? loadSystemInformation)();
  } catch (err) {
    opts.onError?.(err instanceof HealthError ? err : new HealthError(`cannot load ${PACKAGE}`, { cause: err }));
    return { cpuLoadPct: null, memUsedBytes: null, memTotalBytes: null, temperatureC: null, rssBytes, uptimeSec };
  }

  const [load, mem, temp] = await Promise.all([
    probe('currentLoad', timeoutMs, () => si.currentLoad(), opts.onError),
    probe('mem', timeoutMs, () => si.mem(), opts.onError),
    probe('cpuTemperature', timeoutMs, () => si.cpuTemperature(), opts.onError),
  ]);

  const total = finite(mem?.total);
  // `used` counts page cache, which the kernel gives back on demand; `active` (or
  // total - available on older kernels) is the memory that is really taken.
  let used = finite(mem?.active);
  if (used === null && total !== null && finite(mem?.available) !== null) used = total - (mem!.available as number);
  used ??= finite(mem?.used);

  // No sensor reads as null (current releases) or -1 (older ones); neither is a temperature.
  const main = finite(temp?.main);
  const temperatureC = main !== null && main > -1 ? main : null;

  return {
    cpuLoadPct: finite(load?.currentLoad),
    memUsedBytes: used,
    memTotalBytes: total,
    temperatureC,
    rssBytes,
    uptimeSec,
  };
}

// The daemon's logger. Under systemd (stdout is not a terminal) every line is one JSON
// object for journald and log shippers; on a terminal the same records are printed as short
// human-readable lines. pino-pretty is not a dependency, and this is all a person at a
// terminal needs: time, level, message, then the fields.

import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger } from 'pino';
import { REDACTED, SECRET_KEYS, type CalibdConfig } from '../config/index.js';

/**
 * Log fields pino hides wherever they appear (defence in depth: no code logs them): every
 * config secret by its own path and under a logged config, and credentials by name.
 */
export const LOG_SECRETS = [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `config.${k}`), 'token', 'password', 'authorization', '*.token', '*.password', '*.authorization'];

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every record has, shown in the line's head or not at all. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'deviceId', 'event']);

/** One JSON log record as a terminal line: `HH:MM:SS.mmm LEVEL message key=value …`. */
export function prettyLogLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : '';
  const level = (LEVEL_NAMES[rec.level as number] ?? String(rec.level)).padEnd(5);
  const fields = Object.entries(rec)
    .filter(([k]) => !HEAD_FIELDS.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [time, level, String(rec.msg ?? ''), ...fields].filter((s) => s !== '').join(' ');
}

/** A stream that reprints pino's JSON lines with prettyLogLine. */
function prettyStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const lines = chunk.toString().split('\n').filter((l) => l !== '');
      out.write(lines.map((l) => `${prettyLogLine(l)}\n`).join(''));
      done();
    },
  });
}

/**
 * The daemon's pino logger: ISO times (a journal or a person reads them, not a program
 * counting milliseconds), secrets redacted, JSON unless stdout is a terminal.
 */
export function createDaemonLogger(config: Pick<CalibdConfig, 'deviceId' | 'log'>, out: NodeJS.WriteStream = process.stdout): PinoLogger {
  const options = {
    level: config.log.level,
    base: { deviceId: config.deviceId },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: LOG_SECRETS, censor: REDACTED },
  };
  return out.isTTY ? pino(options, prettyStream(out)) : pino(options);
}

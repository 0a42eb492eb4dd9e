// The admin commands, defined once: name, whether it changes state, the zod schema of its
// arguments and what it does. The HTTP admin routes (api/server.ts) and the MQTT commands
// (fleet/member.ts) are two thin adapters over this table, so a command is checked one way
// whichever road it comes by: an unknown field or a bad value is refused before anything
// runs, with one OptionError (code 'option') naming the field and what is allowed.

import { z } from 'zod';
import { OptionError, printableJson } from '../common/errors.js';
import { RANGE_METHODS } from '../calibration/methods.js';
import { EXPORT_FORMATS } from '../quant/tensorrt-cache.js';
import { isRuntimeTunableKey, redactedConfig, runtimeTunableKeys, type CalibdConfig } from '../config/index.js';

/** What the commands call on the agent (CalibrationAgent satisfies it structurally). */
export interface CommandTarget {
  readonly config: CalibdConfig;
  status(): unknown;
  calibrations(): unknown[];
  recalibrate(req: RecalibrateRequest): Promise<{ version: number; state: 'accepted' | 'rejected' | 'unchanged'; figures: Record<string, number> }>;
  rollback(req: RollbackRequest): Promise<{ version: number }>;
  statistics(): Promise<unknown>;
  exportCalibration(req: ExportRequest): unknown;
  applyFleet(req: ApplyRequest): Promise<{ version: number; state: 'accepted' | 'rejected' | 'unchanged'; figures: Record<string, number> }>;
  applyConfig(key: string, value: unknown): unknown;
  readonly buffer: { stats(): object; clear(): void; count(): number };
}

const positiveVersion = "'version' must be a positive integer";

const recalibrateSchema = z.strictObject({
  method: z.enum(RANGE_METHODS, { error: (iss) => `unknown calibration method '${String(iss.input)}'` }).optional(),
  full: z.boolean({ error: "'full' must be true or false" }).optional(),
});
const rollbackSchema = z.strictObject({
  version: z.int({ error: positiveVersion }).positive({ error: positiveVersion }).optional(),
});
const noArguments = z.strictObject({});
const exportSchema = z.strictObject({
  format: z.enum(EXPORT_FORMATS, { error: (iss) => `unknown export format '${String(iss.input)}'` }),
  trtVersion: z.int({ error: "'trtVersion' must be a positive integer, e.g. 8601 for TensorRT 8.6.1" }).positive({ error: "'trtVersion' must be a positive integer, e.g. 8601 for TensorRT 8.6.1" }).optional(),
});
const applySchema = z.strictObject({
  calibration: z.record(z.string(), z.unknown(), { error: "'calibration' must be a fleet calibration object (calibd fleet calibrate makes one)" }),
  margin: z.number({ error: "'margin' must be a number of metric points" }).min(0, { error: "'margin' must be >= 0" }).optional(),
});
const configGetSchema = z.strictObject({ key: z.string({ error: "'key' must be a string" }).optional() });
const configSetSchema = z.strictObject({
  key: z.string({ error: "config/set needs 'key' (a string) and 'value'" }),
  value: z.unknown().refine((v) => v !== undefined, { error: "config/set needs 'value'" }),
});

export type RecalibrateRequest = z.infer<typeof recalibrateSchema>;
export type RollbackRequest = z.infer<typeof rollbackSchema>;
export type ApplyRequest = z.infer<typeof applySchema>;
export type ExportRequest = z.infer<typeof exportSchema>;

export interface Command<A, T> {
  name: string;
  /** Changes state: over MQTT, refused without a valid signature when a signing key is set. */
  mutating: boolean;
  schema: z.ZodType<A>;
  /** What to do when a field's value is refused, by field. */
  hints?: Record<string, string>;
  run(target: T, args: A): unknown;
}

function command<A, T = CommandTarget>(c: Command<A, T>): Command<A, T> {
  return c;
}

/**
 * The table. Its keys are the command names: over MQTT the last levels of the request topic;
 * over HTTP, api/server.ts gives four of them a route (config and buffer are MQTT only).
 */
export const commands = {
  recalibrate: command({
    name: 'recalibrate',
    mutating: true,
    schema: recalibrateSchema,
    hints: { method: `use one of ${RANGE_METHODS.join(', ')}` },
    run: (agent: Pick<CommandTarget, 'recalibrate'>, args) => agent.recalibrate(args),
  }),
  rollback: command({
    name: 'rollback',
    mutating: true,
    schema: rollbackSchema,
    hints: { version: 'GET /v2/calibd/calibrations (or the calibrations command over MQTT) lists the versions' },
    run: (agent: Pick<CommandTarget, 'rollback'>, args) => agent.rollback(args),
  }),
  stats: command({
    name: 'stats',
    mutating: false,
    schema: noArguments,
    run: (agent: Pick<CommandTarget, 'statistics'>) => agent.statistics(),
  }),
  apply: command({
    name: 'apply',
    mutating: true,
    schema: applySchema,
    hints: { margin: 'metric points the fleet calibration may lose against the active one on this device, e.g. 0.5' },
    run: (agent: Pick<CommandTarget, 'applyFleet'>, args) => agent.applyFleet(args),
  }),
  export: command({
    name: 'export',
    mutating: false,
    schema: exportSchema,
    hints: { format: `use one of ${EXPORT_FORMATS.join(', ')}` },
    run: (agent: Pick<CommandTarget, 'exportCalibration'>, args) => agent.exportCalibration(args),
  }),
  status: command({
    name: 'status',
    mutating: false,
    schema: noArguments,
    run: (agent: Pick<CommandTarget, 'status'>) => agent.status(),
  }),
  calibrations: command({
    name: 'calibrations',
    mutating: false,
    schema: noArguments,
    run: (agent: Pick<CommandTarget, 'calibrations'>) => ({ calibrations: agent.calibrations() }),
  }),
  'config/get': command({
    name: 'config/get',
    mutating: false,
    schema: configGetSchema,
    run: (agent: Pick<CommandTarget, 'config'>, { key }) => {
      if (key === undefined) {
        const tunable: Record<string, unknown> = {};
        for (const k of runtimeTunableKeys) tunable[k] = readKey(agent.config, k);
        return { tunable, config: redactedConfig(agent.config) };
      }
      // Read from the redacted copy, so a section ('http') hides its secrets as the key does.
      return { key, value: readKey(redactedConfig(agent.config), key), tunable: isRuntimeTunableKey(key) };
    },
  }),
  'config/set': command({
    name: 'config/set',
    mutating: true,
    schema: configSetSchema,
    hints: { key: `runtime-tunable keys: ${runtimeTunableKeys.join(', ')}` },
    run: (agent: Pick<CommandTarget, 'config' | 'applyConfig'>, { key, value }) => {
      const previous = isRuntimeTunableKey(key) ? readKey(agent.config, key) : undefined;
      return { key, value: agent.applyConfig(key, value), previous };
    },
  }),
  'buffer/stats': command({
    name: 'buffer/stats',
    mutating: false,
    schema: noArguments,
    run: (agent: Pick<CommandTarget, 'buffer'>) => agent.buffer.stats(),
  }),
  'buffer/clear': command({
    name: 'buffer/clear',
    mutating: true,
    schema: noArguments,
    run: (agent: Pick<CommandTarget, 'buffer'>) => {
      const rows = agent.buffer.count();
      agent.buffer.clear();
      return { cleared: rows };
    },
  }),
} as const;

export type CommandName = keyof typeof commands;
export const commandNames = Object.keys(commands) as CommandName[];

export function isCommandName(s: string): s is CommandName {
  return Object.hasOwn(commands, s);
}

/** What running `name` needs from the agent. */
export type TargetOf<N extends CommandName> = Parameters<(typeof commands)[N]['run']>[0];
/** The checked arguments of `name`. */
export type ArgsOf<N extends CommandName> = z.infer<(typeof commands)[N]['schema']>;

/**
 * The arguments of `name`, checked against its schema: the first problem is thrown as an
 * OptionError naming the field and its value. Nothing has run yet when it throws.
 */
export function checkArguments<N extends CommandName>(name: N, fields: Record<string, unknown>): ArgsOf<N> {
  const c = commands[name] as Command<ArgsOf<N>, unknown>;
  const parsed = c.schema.safeParse(fields);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const allowed = Object.keys((c.schema as unknown as z.ZodObject).shape);
    const key = issue.keys[0];
    throw new OptionError(`${name}: unknown field '${key}'`, { value: key, hint: allowed.length ? `allowed: ${allowed.join(', ')}` : 'this command takes no arguments' });
  }
  const field = String(issue.path[0] ?? '');
  const value = fields[field];
  const hint = c.hints?.[field];
  throw new OptionError(issue.message.includes(field) ? issue.message : `'${field}' ${issue.message} (got ${printableJson(value)})`, { value, hint });
}

/** Checks the arguments of `name`, then runs it: the one path every adapter takes. */
export async function runCommand<N extends CommandName>(name: N, target: TargetOf<N>, fields: Record<string, unknown>): Promise<unknown> {
  const args = checkArguments(name, fields);
  const c = commands[name] as Command<ArgsOf<N>, TargetOf<N>>;
  return c.run(target, args);
}

function readKey(config: CalibdConfig, key: string): unknown {
  let cur: unknown = config;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object' || !(part in (cur as object))) {
      throw new OptionError(`no config key ${key}`, { value: key, hint: `runtime-tunable keys: ${runtimeTunableKeys.join(', ')}` });
    }
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

// The commands a device answers over MQTT, as plain functions of the agent: argument
// checking first (a bad argument is an error with no state change), then one agent call.

import { recalibrateRequest, refuseUnknownFields, rollbackRequest } from '../agent/requests.js';
import { CalibdError, OptionError } from '../common/errors.js';
import { isRuntimeTunableKey, redactedConfig, runtimeTunableKeys, type CalibdConfig } from '../config/index.js';
import type { CommandName } from './topics.js';

/** What the commands need from CalibrationAgent (it satisfies this structurally). */
export interface CommandTarget {
  readonly config: CalibdConfig;
  status(): Record<string, unknown>;
  recalibrate(req: { method?: string; full?: boolean }): Promise<unknown>;
  rollback(req: { version?: number }): Promise<{ version: number }>;
  applyConfig(key: string, value: unknown): unknown;
  readonly buffer: { stats(): object; clear(): void; count(): number };
}

/** Fields any request may carry besides its arguments. */
const ENVELOPE = new Set(['transaction', 'ts', 'sig']);

/** A request's own fields, without the envelope. */
function fieldsOf(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k]) => !ENVELOPE.has(k)));
}

function args(command: string, body: Record<string, unknown>, allowed: string[]): Record<string, unknown> {
  const fields = fieldsOf(body);
  refuseUnknownFields(command, fields, allowed);
  return fields;
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

export async function runCommand(agent: CommandTarget, command: CommandName, body: Record<string, unknown>): Promise<unknown> {
  switch (command) {
    case 'recalibrate':
      return agent.recalibrate(recalibrateRequest(fieldsOf(body)));
    case 'rollback':
      return agent.rollback(rollbackRequest(fieldsOf(body)));
    case 'status':
      args(command, body, []);
      return agent.status();
    case 'config/get': {
      const a = args(command, body, ['key']);
      if (a.key === undefined) {
        const tunable: Record<string, unknown> = {};
        for (const k of runtimeTunableKeys) tunable[k] = readKey(agent.config, k);
        return { tunable, config: redactedConfig(agent.config) };
      }
      if (typeof a.key !== 'string') throw new OptionError(`'key' must be a string`, { value: a.key });
      // Read from the redacted copy, so a section ('http') hides its secrets as the key does.
      const value = readKey(redactedConfig(agent.config), a.key);
      return { key: a.key, value, tunable: isRuntimeTunableKey(a.key) };
    }
    case 'config/set': {
      const a = args(command, body, ['key', 'value']);
      if (typeof a.key !== 'string') throw new OptionError(`config/set needs 'key' (a string) and 'value'`, { value: a.key, hint: `runtime-tunable keys: ${runtimeTunableKeys.join(', ')}` });
      if (!('value' in a)) throw new OptionError(`config/set needs 'value'`, { value: a.key });
      const previous = isRuntimeTunableKey(a.key) ? readKey(agent.config, a.key) : undefined;
      const value = agent.applyConfig(a.key, a.value);
      return { key: a.key, value, previous };
    }
    case 'buffer/stats':
      args(command, body, []);
      return agent.buffer.stats();
    case 'buffer/clear': {
      args(command, body, []);
      const rows = agent.buffer.count();
      agent.buffer.clear();
      return { cleared: rows };
    }
    default: {
      const never: never = command;
      throw new CalibdError('unknown-command', `unknown command ${String(never)}`);
    }
  }
}

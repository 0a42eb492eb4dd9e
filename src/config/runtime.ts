// Changes to the running config, as the fleet's `config/set` command asks for them. Only a
// few policy knobs may change while serving; everything else (paths, ports, the model)
// needs a restart, so asking for it is an error rather than a change that silently does
// nothing until the next start.

import { ConfigError } from './errors.js';
import { issueToError } from './load.js';
import { calibdConfigSchema, type CalibdConfig } from './schema.js';

export const runtimeTunableKeys = [
  'sampling.oneIn',
  'recalibration.everyInferences',
  'recalibration.cron',
  'recalibration.method',
  'recalibration.gateMargin',
  'recalibration.driftThreshold',
] as const;

export type RuntimeTunableKey = (typeof runtimeTunableKeys)[number];

export function isRuntimeTunableKey(key: string): key is RuntimeTunableKey {
  return (runtimeTunableKeys as readonly string[]).includes(key);
}

/**
 * Returns a new config with `key` set to `value`, validated against the whole schema so
 * cross-key rules still hold. The given config is not modified.
 */
export function applyRuntimeChange(config: CalibdConfig, key: string, value: unknown): CalibdConfig {
  if (!isRuntimeTunableKey(key)) {
    throw new ConfigError(`config key ${key} cannot be changed at run time; allowed: ${runtimeTunableKeys.join(', ')}`, {
      key,
      value,
      hint: 'change it in the config file and restart calibd',
    });
  }
  if (value === undefined) {
    throw new ConfigError(`config key ${key}: a value is required`, { key });
  }
  const [section, leaf] = key.split('.') as [keyof CalibdConfig, string];
  const next = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
  next[section][leaf] = value;
  const result = calibdConfigSchema.safeParse(next);
  if (!result.success) throw issueToError(result.error.issues[0], result.error.issues.length, next, undefined, new Map());
  // Parsing re-derives nothing that matters here, but keep the caller's resolved paths as they were.
  return { ...config, [section]: result.data[section] };
}

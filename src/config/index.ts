// Public API of the config module: the schema and its type, loading (file + environment),
// and the run-time changes the fleet may make.

export { ConfigError, type ConfigErrorOptions } from './errors.js';
export {
  calibdConfigSchema,
  redactedConfig,
  SECRET_KEYS,
  httpSchema,
  logLevels,
  sanitizeDeviceId,
  type CalibdConfig,
  type CalibdConfigInput,
  type HttpConfig,
  type LogLevel,
} from './schema.js';
export { loadConfig, parseConfig, envBindings, type LoadConfigOptions } from './load.js';
export { applyRuntimeChange, runtimeTunableKeys, isRuntimeTunableKey, type RuntimeTunableKey } from './runtime.js';
export { cronProblem, isValidCron } from './cron.js';
export { REDACTED, touchesSecret } from './secrets.js';
export { inputContract } from './input-range.js';

// Arguments of the agent's admin requests, checked one way whether they arrive over HTTP
// or MQTT: an unknown field or a bad value is refused before the agent is called, with the
// same OptionError (code 'option') naming the field and what is allowed.

import { OptionError } from '../common/errors.js';
import { RANGE_METHODS } from '../calibration/methods.js';

export interface RecalibrateRequest {
  method?: string;
  full?: boolean;
}

export interface RollbackRequest {
  version?: number;
}

const RECALIBRATE_FIELDS = ['method', 'full'] as const;
const ROLLBACK_FIELDS = ['version'] as const;

/** Refuses the first field that `command` does not take. */
export function refuseUnknownFields(command: string, fields: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(fields)) {
    if (!allowed.includes(key)) {
      throw new OptionError(`${command}: unknown field '${key}'`, { value: key, hint: allowed.length ? `allowed: ${allowed.join(', ')}` : 'this command takes no arguments' });
    }
  }
}

export function recalibrateRequest(fields: Record<string, unknown>): RecalibrateRequest {
  refuseUnknownFields('recalibrate', fields, RECALIBRATE_FIELDS);
  const { method, full } = fields;
  if (method !== undefined && !(RANGE_METHODS as readonly unknown[]).includes(method)) {
    throw new OptionError(`unknown calibration method '${String(method)}'`, { value: method, hint: `use one of ${RANGE_METHODS.join(', ')}` });
  }
  if (full !== undefined && typeof full !== 'boolean') throw new OptionError(`'full' must be true or false`, { value: full });
  return { method: method as string | undefined, full };
}

export function rollbackRequest(fields: Record<string, unknown>): RollbackRequest {
  refuseUnknownFields('rollback', fields, ROLLBACK_FIELDS);
  const { version } = fields;
  if (version !== undefined && !(Number.isSafeInteger(version) && (version as number) > 0)) {
    throw new OptionError(`'version' must be a positive integer`, { value: version, hint: 'GET /v2/calibd/calibrations lists the versions' });
  }
  return { version: version as number | undefined };
}

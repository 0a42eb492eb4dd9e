// Fleet settings that the config schema does not have keys for (yet), read from the
// environment and systemd credentials:
//   CALIBD_MQTT_EMBEDDED_PORT       port of the embedded broker (default 1883; 0 = any free port)
//   CALIBD_MQTT_SIGNING_KEY_FILE    shared HMAC key; else the systemd credential `mqtt-signing-key`
//   CALIBD_MQTT_SIGNING_WINDOW_SEC  accepted clock difference for signed commands (default 30)
//   CALIBD_MQTT_BACKOFF_MAX_MS      longest reconnect delay (default 30000)

import { CalibdError } from '../common/errors.js';
import { readCredential } from '../service/credentials.js';
import type { FleetMemberOptions } from './member.js';
import { readSigningKey } from './signing.js';

function intVar(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new CalibdError('config', `${name} must be an integer from ${min} to ${max}`, { value: raw });
  return n;
}

export function fleetOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): FleetMemberOptions {
  const o: FleetMemberOptions = { env };
  o.embeddedPort = intVar(env, 'CALIBD_MQTT_EMBEDDED_PORT', 0, 65535);
  const keyFile = env.CALIBD_MQTT_SIGNING_KEY_FILE;
  if (keyFile) o.signingKey = readSigningKey(keyFile);
  else {
    const cred = readCredential('mqtt-signing-key', env);
    if (cred !== null) o.signingKey = Buffer.from(cred);
  }
  const win = intVar(env, 'CALIBD_MQTT_SIGNING_WINDOW_SEC', 1, 3600);
  if (win !== undefined) o.signingWindowMs = win * 1000;
  const max = intVar(env, 'CALIBD_MQTT_BACKOFF_MAX_MS', 100, 3_600_000);
  if (max !== undefined) o.backoff = { maxMs: max, initialMs: Math.min(500, max) };
  return o;
}

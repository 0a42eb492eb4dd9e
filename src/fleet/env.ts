// Fleet member options from the validated config (mqtt.*) and systemd credentials: the
// embedded broker's port, the command-signing key and window, the reconnect backoff cap.

import type { CalibdConfig } from '../config/index.js';
import { readCredential } from '../service/credentials.js';
import type { FleetMemberOptions } from './member.js';
import { readSigningKey } from './signing.js';

export function fleetOptionsFromConfig(config: CalibdConfig, env: NodeJS.ProcessEnv = process.env): FleetMemberOptions {
  const o: FleetMemberOptions = { env };
  const m = config.mqtt;
  if (!m) return o;
  o.embeddedPort = m.embeddedPort;
  if (m.signingKeyFile) o.signingKey = readSigningKey(m.signingKeyFile);
  else {
    const cred = readCredential('mqtt-signing-key', env);
    if (cred !== null) o.signingKey = Buffer.from(cred);
  }
  o.signingWindowMs = m.signingWindowSec * 1000;
  o.backoff = { maxMs: m.backoffMaxMs, initialMs: Math.min(500, m.backoffMaxMs) };
  return o;
}

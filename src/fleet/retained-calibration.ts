// The device side of `firstBoot: fleet`: reads the fleet calibration of its model that
// `calibd fleet calibrate` retained on the broker. A short-lived connection of its own, as
// this runs before the fleet member exists; any failure (no broker, nothing retained, a bad
// signature) gives null, and the caller falls back to a data-free calibration.

import mqtt from 'mqtt';
import type { CalibdConfig } from '../config/index.js';
import type { Logger } from '../common/index.js';
import { readTlsFiles, resolvePassword } from './connection.js';
import { fleetOptionsFromConfig } from './env.js';
import { hasValidSignature } from './signing.js';
import { FLEET_LEVEL, fleetCalibrationCommand, fleetCalibrationTopic } from './topics.js';

/** How long a first boot waits for the broker and the retained calibration. */
export const RETAINED_WAIT_MS = 5000;

export async function readRetainedCalibration(config: CalibdConfig, modelSha256: string, log: Logger, waitMs = RETAINED_WAIT_MS): Promise<Record<string, unknown> | null> {
  const m = config.mqtt;
  if (!m || m.url === 'embedded') {
    log.info({ firstBoot: 'fleet' }, 'firstBoot: fleet needs an external MQTT broker; none is configured');
    return null;
  }
  const topic = fleetCalibrationTopic(m.baseTopic, modelSha256);
  const { signingKey } = fleetOptionsFromConfig(config);
  let client: mqtt.MqttClient | undefined;
  try {
    client = await mqtt.connectAsync(m.url, {
      clientId: `${config.deviceId}-first-boot`,
      protocolVersion: m.protocolVersion as 4 | 5,
      username: m.username,
      password: resolvePassword(m),
      ...(readTlsFiles(m) ?? {}),
      reconnectPeriod: 0,
      connectTimeout: waitMs,
    });
    const c = client;
    const payload = await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), waitMs);
      c.on('message', (t, p) => {
        if (t !== topic) return;
        clearTimeout(timer);
        resolve(p);
      });
      c.subscribeAsync(topic, { qos: 1 }).catch(() => resolve(null));
    });
    if (!payload) {
      log.info({ topic }, `no fleet calibration is retained for this model within ${waitMs} ms`);
      return null;
    }
    const doc = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    if (signingKey && !hasValidSignature(signingKey, { target: FLEET_LEVEL, command: fleetCalibrationCommand(modelSha256) }, doc)) {
      log.warn({ topic }, 'the retained fleet calibration is unsigned or its signature is wrong; ignored');
      return null;
    }
    const { ts: _ts, sig: _sig, ...calibration } = doc;
    return calibration;
  } catch (err) {
    log.info({ err: (err as Error).message }, 'reading the retained fleet calibration failed');
    return null;
  } finally {
    await client?.endAsync().catch(() => undefined);
  }
}

// Topic names under <base>/<device-id>/ and the fleet-wide request prefix. Command names
// (agent/commands.ts) may span levels (config/get), so a request topic is parsed by prefix,
// not by position.

export const FLEET_LEVEL = 'fleet';

export interface DeviceTopics {
  prefix: string;
  status: string;
  metrics: string;
  events: string;
  /** Subscriptions that deliver this device's requests. */
  requestFilters: [string, string];
  response(command: string): string;
  /** The target (this device's id, or FLEET_LEVEL) and command of a request topic; null when it is not one for this device. */
  requestOf(topic: string): { target: string; command: string } | null;
}

export function deviceTopics(base: string, deviceId: string): DeviceTopics {
  const prefix = `${base}/${deviceId}/`;
  const own = `${prefix}request/`;
  const fleet = `${base}/${FLEET_LEVEL}/request/`;
  return {
    prefix,
    status: `${prefix}status`,
    metrics: `${prefix}metrics`,
    events: `${prefix}events`,
    requestFilters: [`${own}#`, `${fleet}#`],
    response: (command) => `${prefix}response/${command}`,
    requestOf(topic) {
      if (topic.startsWith(own)) return { target: deviceId, command: topic.slice(own.length) };
      if (topic.startsWith(fleet)) return { target: FLEET_LEVEL, command: topic.slice(fleet.length) };
      return null;
    },
  };
}

/** The device id in `<base>/<device>/<rest>`, or null. */
export function deviceOf(base: string, topic: string): { device: string; rest: string } | null {
  if (!topic.startsWith(`${base}/`)) return null;
  const tail = topic.slice(base.length + 1);
  const slash = tail.indexOf('/');
  if (slash <= 0) return null;
  return { device: tail.slice(0, slash), rest: tail.slice(slash + 1) };
}

export function requestTopic(base: string, target: string | null, command: string): string {
  return `${base}/${target ?? FLEET_LEVEL}/request/${command}`;
}

/** Name of the retained fleet calibration of one model, as signed (see signing.ts). */
export function fleetCalibrationCommand(modelSha256: string): string {
  return `calibration/${modelSha256}`;
}

/**
 * Where the latest fleet calibration of a model is kept, retained, for devices that start
 * with `firstBoot: fleet`: beside the fleet-wide requests, never under them.
 */
export function fleetCalibrationTopic(base: string, modelSha256: string): string {
  return `${base}/${FLEET_LEVEL}/${fleetCalibrationCommand(modelSha256)}`;
}

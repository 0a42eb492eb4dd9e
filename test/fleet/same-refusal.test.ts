// One command table, two roads: the real daemon on a real mosquitto answers the same bad
// admin command over HTTP and over MQTT with the same code, and changes nothing either way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetClient } from '../../src/fleet/index.js';
import { mqttConfig, startDaemon, type Daemon } from '../helpers/daemon.js';
import { mosquittoSkipReason, startBroker, type TestBroker } from '../helpers/mosquitto.js';
import { post } from '../helpers/serve.js';

const skipReason = mosquittoSkipReason();
if (skipReason) console.warn(`[same-refusal test] ${skipReason}`);

let broker: TestBroker;
let device: Daemon;
let op: FleetClient;

beforeAll(async () => {
  if (skipReason) return;
  const dir = mkdtempSync(join(tmpdir(), 'calibd-same-refusal-'));
  broker = await startBroker();
  const passwordFile = join(dir, 'dev-a.pw');
  writeFileSync(passwordFile, `${broker.users['dev-a']}\n`);
  const stateDir = mkdtempSync(join(dir, 'state-'));
  device = await startDaemon({
    stateDir,
    config: { deviceId: 'dev-a', stateDir, mqtt: mqttConfig(broker.url, broker.secure ? { user: 'dev-a', passwordFile } : {}) },
  });
  op = await FleetClient.connect({ url: broker.url, username: 'operator', password: broker.users.operator, protocolVersion: 5 });
}, 60_000);

afterAll(async () => {
  await op?.close();
  await device?.stop();
  await broker?.stop();
});

describe.skipIf(skipReason !== null)('the same bad command over HTTP and MQTT', () => {
  const cases = [
    { body: { version: 0 }, error: "'version' must be a positive integer" },
    { body: { version: 2, evil: 1 }, error: "rollback: unknown field 'evil'" },
    { body: { method: 'fast' }, command: 'recalibrate', error: "unknown calibration method 'fast'" },
  ];

  for (const { body, command = 'rollback', error } of cases) {
    it(`${command} ${JSON.stringify(body)} is refused by both with code 'option'`, async () => {
      const before = (await device.status()).calibration.version;
      const http = await post(device, `/v2/calibd/${command}`, body);
      const [mqtt] = await op.request('dev-a', command, body, { timeoutMs: 15_000 });
      expect(http.status).toBe(400);
      expect(http.body).toMatchObject({ code: 'option', error: expect.stringContaining(error) });
      expect(mqtt).toMatchObject({ device: 'dev-a', status: 'error', data: { code: 'option' }, error: expect.stringContaining(error) });
      // The same error: HTTP gives message and hint as one line, MQTT gives them apart.
      const { hint } = mqtt.data as { hint?: string };
      expect([mqtt.error, hint].filter(Boolean).join(': ')).toBe(http.body.error);
      expect((await device.status()).calibration.version).toBe(before);
      console.log(`${command} ${JSON.stringify(body)}\n  HTTP ${http.status} ${JSON.stringify(http.body)}\n  MQTT ${JSON.stringify({ status: mqtt.status, data: mqtt.data, error: mqtt.error })}`);
    }, 30_000);
  }
});

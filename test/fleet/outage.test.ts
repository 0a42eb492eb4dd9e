// A 20 s broker outage on the real daemon (scripts/broker-outage.ts runs the 2-minute one).
import { describe, expect, it } from 'vitest';
import { brokerOutage } from '../../scripts/lib/broker-outage.js';
import { mosquittoSkipReason } from '../helpers/mosquitto.js';

const skipReason = mosquittoSkipReason();
if (skipReason) console.warn(`[broker outage test] ${skipReason}`);

describe.skipIf(skipReason !== null)('broker outage while serving', () => {
  it('keeps serving, reconnects by itself, keeps the queue bounded and RSS flat', async () => {
    const r = await brokerOutage({ outageSec: 20, queueMax: 5 });
    console.log(JSON.stringify(r));
    expect(r.inferences.failed).toBe(0);
    expect(r.inferences.during).toBeGreaterThan(100);
    expect(r.inferences.after).toBeGreaterThan(0);
    expect(r.reconnectSec).toBeLessThan(10); // backoff capped at 2 s here
    expect(r.mqtt.connects).toBeGreaterThanOrEqual(2);
    expect(r.mqtt.queueHighWater).toBeLessThanOrEqual(5);
    expect(r.mqtt.dropped).toBeGreaterThan(0); // 20 metrics messages met a queue of 5
    expect(r.mqtt.flushedMetrics).toBeLessThanOrEqual(5);
    expect(r.rssMiB.afterReconnect - r.rssMiB.beforeOutage).toBeLessThan(40); // V8 heap growth on a loaded box; the 2-minute script shows it flat
  }, 90_000);
});

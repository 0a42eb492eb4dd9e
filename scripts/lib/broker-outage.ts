// A broker outage while inference continues: a real daemon on a real mosquitto, a steady
// stream of inference requests, the broker stopped for `outageSec` and started again.
// Measures what the issue asks to hold: no inference fails, the daemon reconnects by
// itself, the offline queue stays within mqtt.queueMax, RSS does not grow. Shared by
// test/fleet/outage.test.ts (short) and scripts/broker-outage.ts (2 minutes).
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetClient } from '../../src/fleet/index.js';
import { inferDigits, mqttConfig, startDaemon, waitFor } from '../../test/helpers/daemon.js';
import { startBroker } from '../../test/helpers/mosquitto.js';
import { loadMnistSplit } from './mnist-data.js';

export interface OutageResult {
  broker: string;
  outageSec: number;
  queueMax: number;
  inferences: { before: number; during: number; after: number; failed: number };
  reconnectSec: number;
  rssMiB: { beforeOutage: number; endOfOutage: number; afterReconnect: number };
  mqtt: { queueHighWater: number; dropped: number; flushedMetrics: number; connects: number };
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
}

export async function brokerOutage(o: { outageSec: number; queueMax?: number; log?: (s: string) => void }): Promise<OutageResult> {
  const log = o.log ?? (() => undefined);
  const queueMax = o.queueMax ?? 5;
  const broker = await startBroker();
  const dir = mkdtempSync(join(tmpdir(), 'calibd-outage-'));
  writeFileSync(join(dir, 'pw'), broker.users['dev-a']);
  const daemon = await startDaemon({
    stateDir: dir,
    config: {
      deviceId: 'dev-a',
      sampling: { oneIn: 10, maxRows: 3000 },
      recalibration: { everyInferences: 0, method: 'percentile', minSamples: 3000, validationSlice: 100, driftThreshold: 5, forgetting: 0.98 },
      mqtt: mqttConfig(broker.url, { ...(broker.secure ? { user: 'dev-a', passwordFile: join(dir, 'pw') } : {}), metricsIntervalSec: 1, queueMax, keepalive: 5 }),
    },
    env: { CALIBD_MQTT_BACKOFF_MAX_MS: '2000' },
  });
  const pid = daemon.proc.pid!;
  const { test } = loadMnistSplit();
  let phase: 'before' | 'during' | 'after' = 'before';
  const counts = { before: 0, during: 0, after: 0, failed: 0 };
  let running = true;
  const loop = (async () => {
    let i = 0;
    while (running) {
      try {
        await inferDigits(daemon, test.images.subarray((i++ % 1000) * 784), 1);
        counts[phase]++;
      } catch {
        counts.failed++;
      }
    }
  })();
  const connectOperator = () => FleetClient.connect({ url: broker.url, username: 'operator', password: broker.users.operator });
  try {
    let op = await connectOperator();
    await waitFor('online', async () => (await op.devices()).some((d) => d.device === 'dev-a' && d.state === 'online'), 15_000);
    await op.close();
    await new Promise((r) => setTimeout(r, 3000)); // warm-up
    const rssBefore = rssMiB(pid);
    log(`broker down for ${o.outageSec} s (RSS ${rssBefore} MiB)`);
    phase = 'during';
    await broker.stop();
    await new Promise((r) => setTimeout(r, o.outageSec * 1000));
    const rssEnd = rssMiB(pid);
    await broker.start();
    const t0 = Date.now();
    phase = 'after';
    op = await connectOperator();
    const metrics: any[] = [];
    const stop = await op.watch('dev-a', `outage-${process.pid}`, (_d, kind, v) => {
      if (kind === 'metrics') metrics.push(v);
    });
    // The broker kept nothing (persistence off): a status means the daemon came back by itself.
    await waitFor('reconnect', async () => (await op.devices({ maxWaitMs: 500 })).some((d) => d.device === 'dev-a' && d.state === 'online'), 30_000);
    const reconnectSec = (Date.now() - t0) / 1000;
    await waitFor('fresh metrics', async () => metrics.some((m) => m.mqtt.connects >= 2 && m.mqtt.queued === 0 && Date.parse(m.time) > t0), 10_000);
    const flushed = metrics.filter((m) => Date.parse(m.time) < t0).length;
    const last = metrics[metrics.length - 1];
    await new Promise((r) => setTimeout(r, 2000));
    const rssAfter = rssMiB(pid);
    await stop();
    await op.close();
    return {
      broker: broker.kind,
      outageSec: o.outageSec,
      queueMax,
      inferences: counts,
      reconnectSec: Math.round(reconnectSec * 10) / 10,
      rssMiB: { beforeOutage: rssBefore, endOfOutage: rssEnd, afterReconnect: rssAfter },
      mqtt: { queueHighWater: last.mqtt.queueHighWater, dropped: last.mqtt.dropped, flushedMetrics: flushed, connects: last.mqtt.connects },
    };
  } finally {
    running = false;
    await loop;
    await daemon.stop();
    await broker.stop();
  }
}

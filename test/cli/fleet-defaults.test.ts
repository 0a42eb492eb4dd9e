// `calibd fleet` as a new user meets it: without --broker it uses the broker of the device's
// config (config/default.yaml unless --config says otherwise) and says which; a fleet-wide
// recalibration refused for want of samples prints the device's hint, and the device counts
// it as refused, not as an error. A real daemon with its embedded broker, the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeFileSync } from 'node:fs';
import { startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { repoRoot } from '../helpers/paths.js';

const bin = join(repoRoot, 'bin', 'calibd.js');
let daemon: Daemon;
let operatorConfig: string;
let port: number;

function fleet(...args: string[]) {
  const env = { ...process.env };
  delete env.CALIBD_MQTT_URL;
  const r = spawnSync(process.execPath, [bin, 'fleet', ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const p = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return p;
}

beforeAll(async () => {
  port = await freePort();
  const mqtt = { url: 'embedded', embeddedPort: port, metricsIntervalSec: 1 };
  daemon = await startDaemon({ config: { mqtt } });
  // The operator's copy of the device config: only its mqtt section matters here.
  operatorConfig = join(daemon.stateDir, 'operator.yaml');
  writeFileSync(operatorConfig, stringify({ model: 'unused.onnx', mqtt }));
  await waitFor('the device on its broker', async () => fleet('ls', '--config', operatorConfig).stdout.includes('test-device'), 20_000);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
});

describe('calibd fleet without --broker', () => {
  it('uses the broker of config/default.yaml and says so', () => {
    // Whatever listens on 1883 here, the choice is said before connecting.
    const r = fleet('ls', '--timeout', '300');
    expect(r.stderr.split('\n')[0]).toBe(`calibd fleet: broker mqtt://127.0.0.1:1883 (from ${join(repoRoot, 'config', 'default.yaml')})`);
  });

  it("uses the embedded broker of --config's file and lists the device", () => {
    const r = fleet('ls', '--config', operatorConfig);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`calibd fleet: broker mqtt://127.0.0.1:${port} (from ${operatorConfig})\n`);
    expect(r.stdout).toMatch(/^test-device\s+online/m);
  });

  it('recalibrate --all with no samples: the error with its hint, counted as refused, not as an error', async () => {
    const r = fleet('recalibrate', '--all', '--config', operatorConfig);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('the sample buffer is empty; nothing to calibrate from: send some inference requests first');
    const status = await daemon.status();
    expect(status.counters).toMatchObject({ recalibrations: 1, refused: 1, errors: 0 });
  });

  it('fleet calibrate: a device with no samples yet is skipped and nothing is applied (exit 1); a bad selection is refused before connecting (exit 2)', () => {
    const r = fleet('calibrate', '--all', '--config', operatorConfig);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^test-device\s+skipped\s+.*no samples yet/m);
    expect(r.stderr).toContain('no device had statistics to merge; nothing applied');
    for (const args of [['test-device', '--all'], ['--all', '--group', 'g'], []]) {
      const bad = fleet('calibrate', ...args, '--broker', 'mqtt://127.0.0.1:1');
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(/^calibd: name devices, or give --all or --group G \(one of the three\)/);
    }
  });
});

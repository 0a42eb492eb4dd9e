// The README's five-minute tour, run as written, command by command, so the README cannot
// drift from the product again. The only rewrites are the ones a fresh machine needs to run
// it beside other tests, each listed in tourScript(): free ports and a fresh state and
// data folder (through the same CALIBD_* variables a user would set), `curl -f` so an HTTP
// error fails the step instead of printing quietly, and a wait for readiness after the
// daemon is started in the background, as a person would wait before typing on.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { freePort } from '../helpers/mosquitto.js';

/** The sh block under "## Five-minute tour", one command a line, comments dropped. */
function tourCommands(readme: string): string[] {
  const section = readme.indexOf('## Five-minute tour');
  const open = readme.indexOf('```sh\n', section);
  const close = readme.indexOf('\n```', open + 6);
  if (section < 0 || open < 0 || close < 0) throw new Error('README has no "## Five-minute tour" sh block');
  return readme
    .slice(open + 6, close)
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

interface Rewrites {
  http: number;
  mqtt: number;
  data: string;
}

/** The tour as one bash script: a marker before each step, a readiness wait after the daemon starts. */
function tourScript(commands: string[], r: Rewrites): string {
  const lines = ['set -euo pipefail'];
  commands.forEach((command, i) => {
    const cmd = command
      .replaceAll('localhost:8080', `127.0.0.1:${r.http}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${r.http}`)
      .replaceAll('127.0.0.1:1883', `127.0.0.1:${r.mqtt}`)
      .replaceAll('scripts/write-mnist-npy.ts', `scripts/write-mnist-npy.ts ${r.data}`)
      .replaceAll('data/mnist/', `${r.data}/`)
      .replace(/^curl -s /, 'curl -sf ');
    lines.push(`echo "::step ${i}"`, cmd);
    if (/^npm start &$/.test(command)) {
      lines.push(`for i in $(seq 240); do curl -sf http://127.0.0.1:${r.http}/v2/health/ready >/dev/null && break; sleep 0.5; done`);
    }
  });
  lines.push('echo "::done"');
  return lines.join('\n') + '\n';
}

function run(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // Its own process group, so the daemon and `fleet watch` it leaves running die with it.
    const child = spawn('bash', [script], { cwd: repoRoot, env, detached: true });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // the group is gone already
      }
      resolve({ code, output });
    });
  });
}

describe('the README tour', () => {
  const commands = tourCommands(readFileSync(join(repoRoot, 'README.md'), 'utf8'));

  it('is a list of commands: calibrate, serve, traffic, fleet, recalibrate, roll back, --auto', () => {
    expect(commands[0]).toMatch(/write-mnist-npy/);
    expect(commands).toContain('npm start &');
    for (const needed of ['calibrate', 'eval', 'inspect', 'replay', 'fleet ls', 'recalibrate', 'rollback', '--auto']) {
      expect(commands.some((c) => c.includes(needed))).toBe(true);
    }
  });

  it('runs as written: every step succeeds on a fresh state folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-tour-'));
    try {
      const r: Rewrites = { http: await freePort(), mqtt: await freePort(), data: join(dir, 'mnist') };
      const script = join(dir, 'tour.sh');
      writeFileSync(script, tourScript(commands, r));
      const env = {
        ...process.env,
        CALIBD_STATE_DIR: join(dir, 'var'),
        CALIBD_HTTP_PORT: String(r.http),
        CALIBD_MQTT_EMBEDDED_PORT: String(r.mqtt),
      };
      const { code, output } = await run(script, env, 540_000);
      const reached = [...output.matchAll(/::step (\d+)/g)].map((m) => Number(m[1]));
      const failed = commands[reached.at(-1) ?? 0];
      expect({ code, failed: code === 0 ? null : failed, tail: code === 0 ? '' : output.slice(-1500) }).toEqual({ code: 0, failed: null, tail: '' });
      expect(reached).toEqual(commands.map((_, i) => i));
      expect(output).toContain('::done');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});

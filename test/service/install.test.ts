import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { hasProgram } from './programs.js';

const script = join(repoRoot, 'scripts', 'install.sh');
const haveApt = hasProgram('apt-get'); // the installer is Debian-only by design

function install(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.runIf(haveApt)('scripts/install.sh', () => {
  it('--dry-run prints the plan and changes nothing', () => {
    const prefix = join(mkdtempSync(join(tmpdir(), 'calibd-install-')), 'opt-calibd');
    const r = install(['--dry-run', '--prefix', prefix]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`[dry-run] npm --prefix ${prefix} ci --omit=dev --ignore-scripts`);
    expect(r.out).toContain(`[dry-run] npm --prefix ${prefix} rebuild`);
    // The unit is rewritten for this node and this prefix.
    expect(r.out).toContain(`ExecStart=${spawnSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).stdout.trim()} ${prefix}/bin/calibd.js serve`);
    expect(r.out).toContain(`WorkingDirectory=${prefix}`);
    expect(existsSync(prefix)).toBe(false);
  });

  // Needs a checkout with config/default.yaml and a machine without /etc/calibd/config.yaml.
  it.runIf(!existsSync('/etc/calibd/config.yaml'))('would write the config from config/default.yaml with stateDir set', () => {
    const checkout = mkdtempSync(join(tmpdir(), 'calibd-checkout-'));
    for (const d of ['scripts', 'systemd', 'config']) mkdirSync(join(checkout, d));
    copyFileSync(script, join(checkout, 'scripts', 'install.sh'));
    copyFileSync(join(repoRoot, 'systemd', 'calibd.service'), join(checkout, 'systemd', 'calibd.service'));
    writeFileSync(join(checkout, 'config', 'default.yaml'), 'model: model.onnx\nstateDir: ./var\nmqtt:\n  url: ""\n');
    const r = spawnSync('bash', [join(checkout, 'scripts', 'install.sh'), '--dry-run'], { encoding: 'utf8' });
    const out = r.stdout + r.stderr;
    expect(r.status, out).toBe(0);
    expect(out).toContain('write /etc/calibd/config.yaml (mode 0644)');
    expect(out).toContain('| stateDir: /var/lib/calibd');
    expect(out).not.toContain('./var');
    expect(out).toContain('| mqtt:');
    // No dist/ and no compiler in that checkout: it would install dev deps there to build.
    expect(out).toContain(`[dry-run] npm --prefix ${checkout} ci`);
  });

  it('refuses a relative or root prefix and unknown options', () => {
    expect(install(['--dry-run', '--prefix', 'opt']).status).not.toBe(0);
    expect(install(['--dry-run', '--prefix', '/']).status).not.toBe(0);
    const r = install(['--dry-run', '--frobnicate']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/unknown option/);
  });

  it('stops with directions when Node is older than 20', () => {
    const bin = mkdtempSync(join(tmpdir(), 'calibd-fake-node-'));
    const fake = join(bin, 'node');
    writeFileSync(fake, '#!/bin/sh\ncase "$1" in -p) echo 18 ;; *) echo v18.19.0 ;; esac\n');
    chmodSync(fake, 0o755);
    const r = install(['--dry-run'], { ...process.env, PATH: `${bin}:${process.env.PATH}` });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/v18\.19\.0 is too old; calibd needs >= 20/);
    expect(r.out).toMatch(/NodeSource/);
  });

  it.runIf(hasProgram('shellcheck'))('is shellcheck-clean', () => {
    const r = spawnSync('shellcheck', [script], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

// Small things a new user met in the real CLI: `--auto` says that it holds a fifth of the
// samples out, and identical outputs read `exact`, never "SQNR Infinity dB".
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNpy } from '../../src/common/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { paths, repoRoot } from '../helpers/paths.js';

const bin = join(repoRoot, 'bin', 'calibd.js');
function calibd(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let samples: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'calibd-friction-'));
  samples = join(dir, 'digits.npy');
  writeNpy(samples, loadMnistSplit().train.images.slice(0, 40 * IMAGE_SIZE), [40, 1, 28, 28]);
});

describe('calibd CLI: small friction', () => {
  it('--auto says how many samples calibrate and how many are held out', () => {
    const r = calibd('calibrate', '--model', paths.mnistModel, '--data', samples, '--auto', '--report', '--out', join(dir, 'auto.onnx'));
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')[0]).toBe('auto: calibrating on 32 of 40 samples; 8 held out to validate the selection');
    expect(r.stdout).toMatch(/: mse, 32 samples,/);
    expect(`${r.stdout}${r.stderr}`).not.toContain('Infinity');
  }, 120_000);

  it('identical outputs read exact, as text', () => {
    const r = calibd('eval', '--fp32', paths.mnistModel, '--int8', paths.mnistModel, '--data', samples);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('output SQNR:      exact\n');
    expect(r.stdout).not.toContain('Infinity');
  });
});

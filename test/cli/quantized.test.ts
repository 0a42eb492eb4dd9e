// An INT8 model where an FP32 one belongs: `calibd serve` refuses it in one line, before
// any work, naming the FP32 model calibd made it from.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { paths, repoRoot } from '../helpers/paths.js';

const bin = join(repoRoot, 'bin', 'calibd.js');

describe('already quantized models', () => {
  it('serve refuses a calibd-made INT8 model with exit 2, naming its FP32 source, and creates no state', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-int8-'));
    const int8 = join(dir, 'int8.onnx');
    const made = spawnSync(process.execPath, [bin, 'calibrate', '--model', paths.mnistModel, '--method', 'datafree', '--out', int8], { encoding: 'utf8', cwd: repoRoot });
    expect(made.status).toBe(0);
    const state = join(dir, 'state');
    const r = spawnSync(process.execPath, [bin, 'serve'], {
      encoding: 'utf8',
      cwd: repoRoot,
      timeout: 60_000,
      env: { ...process.env, CALIBD_MODEL: int8, CALIBD_STATE_DIR: state, CALIBD_HTTP_PORT: '0' },
    });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `calibd: ${int8} is already quantized (22 DequantizeLinear/QuantizeLinear nodes); calibd made it from models/mnist-cnn.onnx: ` +
        'pass the FP32 model it came from as model: (or CALIBD_MODEL); the daemon makes and serves its INT8 calibrations itself\n',
    );
    expect(existsSync(state)).toBe(false);
  });
});

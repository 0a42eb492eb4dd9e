// The real `calibd` binary (bin/calibd.js → dist/), run as a child process on the bundled
// MNIST model and real digits.
import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNpy } from '../../src/common/index.js';
import { readModel } from '../../src/onnx/index.js';
import { readProfile } from '../../src/quant/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { paths, repoRoot } from '../helpers/paths.js';

const bin = join(repoRoot, 'bin', 'calibd.js');
function calibd(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'calibd-cli-'));
  const { train, test } = loadMnistSplit();
  mkdirSync(join(dir, 'calib'));
  // A batch file and single-sample files mixed, as the CLI accepts both.
  writeNpy(join(dir, 'calib', 'a-batch.npy'), train.images.slice(0, 190 * IMAGE_SIZE), [190, 1, 28, 28]);
  for (let i = 190; i < 200; i++) writeNpy(join(dir, 'calib', `s${i}.npy`), train.images.slice(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE), [1, 28, 28]);
  writeNpy(join(dir, 'test.npy'), test.images.slice(0, 500 * IMAGE_SIZE), [500, 1, 28, 28]);
  writeNpy(join(dir, 'labels.npy'), BigInt64Array.from(Array.from(test.labels.slice(0, 500), (v) => BigInt(v))), [500]);
});

describe('calibd CLI', () => {
  it('calibrate → inspect → eval on the bundled model', () => {
    const out = join(dir, 'int8.onnx');
    const c = calibd('calibrate', '--model', paths.mnistModel, '--data', join(dir, 'calib'), '--method', 'entropy', '--out', out);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/wrote .*int8\.onnx: entropy, 200 samples/);
    const profile = readProfile(readModel(out))!;
    expect(profile.method).toBe('entropy');
    expect(profile.sampleCount).toBe(200);

    const i = calibd('inspect', out);
    expect(i.code).toBe(0);
    expect(i.stdout).toContain('method:        entropy');
    expect(i.stdout).toMatch(/input\s+0\.0+\s+1\.0+/);
    const ij = JSON.parse(calibd('inspect', out, '--json').stdout);
    expect(ij.sourceModelSha256).toMatch(/^[0-9a-f]{64}$/);

    const e = calibd('eval', '--fp32', paths.mnistModel, '--int8', out, '--data', join(dir, 'test.npy'), '--labels', join(dir, 'labels.npy'), '--json');
    expect(e.code).toBe(0);
    const r = JSON.parse(e.stdout);
    expect(r.samples).toBe(500);
    expect(r.agreement).toBeGreaterThan(0.98);
    expect(r.accuracyInt8).toBeGreaterThan(0.95);
    expect(r.tensors.length).toBeGreaterThan(3);
    const text = calibd('eval', '--fp32', paths.mnistModel, '--int8', out, '--data', join(dir, 'test.npy'));
    expect(text.stdout).toContain('worst tensors:');
  });

  it('datafree needs no data', () => {
    const out = join(dir, 'df.onnx');
    const c = calibd('calibrate', '--model', paths.mnistModel, '--method', 'datafree', '--out', out);
    expect(c.code).toBe(0);
    expect(readProfile(readModel(out))!.sampleCount).toBe(0);
  });

  it('datafree on a model with free input dimensions takes --input-shape, and names it when missing', () => {
    const out = join(dir, 'df-det.onnx');
    const missing = calibd('calibrate', '--model', paths.ocrDetector, '--method', 'datafree', '--out', out);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--input-shape x=1x3xNxN/);
    const c = calibd('calibrate', '--model', paths.ocrDetector, '--method', 'datafree', '--input-shape', 'x=1x3x64x64', '--out', out);
    expect(c.code).toBe(0);
    expect(readProfile(readModel(out))!.options.inputShapes).toEqual({ x: [3, 64, 64] });
    const wrong = calibd('calibrate', '--model', paths.ocrDetector, '--method', 'datafree', '--input-shape', 'x=1x3x64', '--out', out);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/does not fit/);
  });

  const bad: [string, () => string[], RegExp][] = [
    ['a missing model', () => ['calibrate', '--model', join(dir, 'nope.onnx'), '--data', join(dir, 'calib'), '--out', join(dir, 'x1.onnx')], /cannot read model .*nope\.onnx/],
    ['a file that is not a model', () => {
      writeFileSync(join(dir, 'junk.onnx'), 'not a model at all');
      return ['calibrate', '--model', join(dir, 'junk.onnx'), '--data', join(dir, 'calib'), '--out', join(dir, 'x2.onnx')];
    }, /junk\.onnx is not an ONNX model/],
    ['a wrong dtype', () => {
      mkdirSync(join(dir, 'f64'), { recursive: true });
      writeNpy(join(dir, 'f64', 'a.npy'), new Float64Array(784), [1, 28, 28]);
      return ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'f64'), '--out', join(dir, 'x3.onnx')];
    }, /a\.npy holds float64, input 'input' needs float32/],
    ['a wrong shape', () => {
      mkdirSync(join(dir, 'shape'), { recursive: true });
      writeNpy(join(dir, 'shape', 'a.npy'), new Float32Array(2 * 32 * 32), [2, 1, 32, 32]);
      return ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'shape'), '--out', join(dir, 'x4.onnx')];
    }, /a\.npy has shape \[2,1,32,32\], input 'input' takes \[N,1,28,28\]/],
    ['non-finite values', () => {
      mkdirSync(join(dir, 'nan'), { recursive: true });
      const x = new Float32Array(784);
      x[5] = NaN;
      writeNpy(join(dir, 'nan', 'a.npy'), x, [1, 1, 28, 28]);
      return ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'nan'), '--out', join(dir, 'x5.onnx')];
    }, /a\.npy holds a non-finite value \(NaN\) at flat index 5/],
    ['a missing data folder', () => ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'nowhere'), '--out', join(dir, 'x6.onnx')], /data path .*nowhere does not exist/],
    ['an unknown method', () => ['calibrate', '--model', paths.mnistModel, '--method', 'magic', '--out', join(dir, 'x7.onnx')], /argument 'magic' is invalid/],
    ['inspect of an uncalibrated model', () => ['inspect', paths.mnistModel], /holds no calibd calibration/],
    ['--out into a missing folder, refused before any work', () => ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'calib'), '--out', join(dir, 'nofolder', 'x8.onnx')], /--out .*x8\.onnx: folder .*nofolder does not exist/],
    ['a misspelt option, named with a did-you-mean instead of a missing --model', () => ['calibrate', '--modle', paths.mnistModel, '--out', join(dir, 'x9.onnx')], /^error: unknown option '--modle' \(did you mean --model\?\)\n$/],
    ['a misspelt option of a fleet subcommand', () => ['fleet', 'ls', '--brokr', 'mqtt://127.0.0.1:1'], /^error: unknown option '--brokr' \(did you mean --broker\?\)\n$/],
    ['an --exclude pattern that matches nothing', () => ['calibrate', '--model', paths.mnistModel, '--method', 'datafree', '--exclude', 'Convv', '--out', join(dir, 'x10.onnx')], /--exclude Convv matches no node name or op type \(did you mean Conv\?\)/],
    ['an already quantized model', () => {
      const first = calibd('calibrate', '--model', paths.mnistModel, '--method', 'datafree', '--out', join(dir, 'int8-once.onnx'));
      expect(first.code).toBe(0);
      return ['calibrate', '--model', join(dir, 'int8-once.onnx'), '--method', 'datafree', '--out', join(dir, 'x11.onnx')];
    }, /int8-once\.onnx is already quantized \(\d+ .*QuantizeLinear.* nodes\).*pass the FP32 model it came from with --model/],
    ['images without --preprocess', () => {
      mkdirSync(join(dir, 'img'), { recursive: true });
      writeFileSync(join(dir, 'img', 'a.png'), Buffer.from('not really a png'));
      return ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'img'), '--out', join(dir, 'x12.onnx')];
    }, /are images .*a\.png.*which need a preprocessing spec: pass --preprocess/],
    ['a preprocess spec whose tensor does not fit the model', () => ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'img'), '--preprocess', 'imagenet', '--out', join(dir, 'x13.onnx')], /--preprocess gives \[N,3,224,224\], input 'input' takes \[N,1,28,28\]/],
    ['an image that is not one', () => ['calibrate', '--model', paths.mnistModel, '--data', join(dir, 'img'), '--preprocess', 'mnist', '--out', join(dir, 'x14.onnx')], /a\.png is not a readable JPEG, PNG or WebP image/],
  ];
  for (const [what, args, message] of bad) {
    it(`${what}: one line, exit code 2, no output file`, () => {
      const before = new Set(readdirSync(dir));
      const r = calibd(...args());
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      const created = readdirSync(dir).filter((f) => !before.has(f) && f.startsWith('x'));
      expect(created).toEqual([]);
    });
  }

  it('prints its version and help', () => {
    expect(calibd('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(calibd('--help').stdout).toContain('calibrate');
    expect(existsSync(bin)).toBe(true);
  });
});

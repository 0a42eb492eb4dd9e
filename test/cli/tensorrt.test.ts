// The Jetson/TensorRT commands, run as the real binary (bin/calibd.js → dist/) on the
// bundled MNIST CNN: `calibd export --format tensorrt-cache` and `calibd calibrate --target tensorrt`.
import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNpy } from '../../src/common/index.js';
import { readModel, writeModel } from '../../src/onnx/index.js';
import { readProfile } from '../../src/quant/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { paths, repoRoot } from '../helpers/paths.js';

const bin = join(repoRoot, 'bin', 'calibd.js');
function calibd(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let int8: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'calibd-export-'));
  const { train } = loadMnistSplit();
  mkdirSync(join(dir, 'calib'));
  writeNpy(join(dir, 'calib', 'digits.npy'), train.images.slice(0, 100 * IMAGE_SIZE), [100, 1, 28, 28]);
  int8 = join(dir, 'int8.onnx');
  const c = calibd('calibrate', '--model', paths.mnistModel, '--data', join(dir, 'calib'), '--method', 'minmax', '--out', int8);
  expect(c.code).toBe(0);
});

describe('calibd export --format tensorrt-cache', () => {
  it('writes the cache and says how many names exist in the FP32 model', () => {
    const out = join(dir, 'calib.cache');
    const r = calibd('export', '--format', 'tensorrt-cache', int8, '--out', out, '--fp32', paths.mnistModel);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('TRT-8601-EntropyCalibration2');
    for (const line of lines.slice(1)) expect(line).toMatch(/^[^:]+: [0-9a-f]+$/);
    expect(r.stdout).toContain(`wrote ${out}: TRT-8601-EntropyCalibration2, ${lines.length - 1} tensors`);
    expect(r.stdout).toMatch(new RegExp(`${lines.length - 1} of ${lines.length - 1} exist in .*mnist-cnn\\.onnx; 0 do not`));
  });

  it('takes the TensorRT version of the header, and without --fp32 says how to check the names', () => {
    const out = join(dir, 'v10.cache');
    const r = calibd('export', '--format', 'tensorrt-cache', int8, '--out', out, '--trt-version', '10300');
    expect(r.code).toBe(0);
    expect(readFileSync(out, 'utf8').split('\n')[0]).toBe('TRT-10300-EntropyCalibration2');
    expect(r.stdout).toContain('pass --fp32 FP32.onnx');
  });

  const refused = (args: string[], out: string, message: RegExp) => {
    const r = calibd('export', '--format', 'tensorrt-cache', ...args, '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  };

  it('refuses a model calibd did not calibrate (exit 2, one line, no file)', () => {
    refused([paths.mnistModel], join(dir, 'fp32.cache'), /^calibd: .*mnist-cnn\.onnx holds no calibd calibration, so it has no ranges to export: export an INT8 model written by `calibd calibrate`\n$/);
  });

  it("refuses a tensor whose name holds ':', as PyTorch exports name them (onnx::Relu_3)", () => {
    // The bundled model with one activation renamed the way torch.onnx.export names tensors.
    const model = readModel(paths.mnistModel);
    for (const n of model.graph!.node) {
      n.input = n.input.map((t) => (t === 'relu1_out' ? 'onnx::Relu_3' : t));
      n.output = n.output.map((t) => (t === 'relu1_out' ? 'onnx::Relu_3' : t));
    }
    const fp32 = join(dir, 'colon.onnx');
    writeModel(model, fp32);
    const colonInt8 = join(dir, 'colon-int8.onnx');
    expect(calibd('calibrate', '--model', fp32, '--method', 'datafree', '--out', colonInt8).code).toBe(0);
    refused([colonInt8], join(dir, 'colon.cache'), /^calibd: tensor 'onnx::Relu_3' holds ':', which TensorRT's calibration cache cannot carry .*: rename the tensor in the FP32 model/);
  });

  it('refuses an --fp32 model that is quantized, and an --out folder that does not exist', () => {
    refused([int8, '--fp32', int8], join(dir, 'q.cache'), /--fp32 .*int8\.onnx is already quantized: pass the FP32 model/);
    refused([int8], join(dir, 'nowhere', 'x.cache'), /--out .*x\.cache: folder .*nowhere does not exist/);
  });
});

describe('calibd calibrate --target tensorrt', () => {
  it('writes a TensorRT Q/DQ model whose profile, inspect and export name the target', () => {
    const out = join(dir, 'trt.onnx');
    const c = calibd('calibrate', '--model', paths.mnistModel, '--data', join(dir, 'calib'), '--target', 'tensorrt', '--out', out);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    const profile = readProfile(readModel(out))!;
    expect(profile.options).toMatchObject({ target: 'tensorrt', symmetricActivations: true, activationType: 'int8', weightRange: 'full' });
    expect(calibd('inspect', out).stdout).toContain('target:        tensorrt');
    const e = calibd('export', '--format', 'tensorrt-cache', out, '--out', join(dir, 'trt.cache'));
    expect(e.code).toBe(0);
    expect(e.stdout).toContain('this model is a TensorRT Q/DQ model too');
  });

  const refused: [string, string[], RegExp][] = [
    ['--auto, which times ORT on this CPU', ['--auto'], /--auto times INT8 against FP32 with ONNX Runtime on this CPU, which says nothing about TensorRT: drop --auto with --target tensorrt/],
    ['uint8 activations', ['--activation-type', 'uint8'], /target tensorrt takes int8 activations only/],
    ['--reduce-range', ['--reduce-range'], /target tensorrt uses the full 8 bits/],
  ];
  for (const [what, extra, message] of refused) {
    it(`refuses ${what} (exit 2, one line, no file)`, () => {
      const out = join(dir, `refused-${extra[0].slice(2)}.onnx`);
      const r = calibd('calibrate', '--model', paths.mnistModel, '--data', join(dir, 'calib'), '--target', 'tensorrt', ...extra, '--out', out);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('refuses an unknown target with the choices', () => {
    const r = calibd('calibrate', '--model', paths.mnistModel, '--method', 'datafree', '--target', 'tflite', '--out', join(dir, 'x.onnx'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/argument 'tflite' is invalid. Allowed choices are ort, tensorrt/);
  });
});

// TensorRT's calibration cache: the encoding checked against values worked out by hand,
// and a cache of the bundled MNIST CNN, calibrated for real, read back the way ONNX
// Runtime's TensorRT execution provider reads it.
import { describe, expect, it, beforeAll } from 'vitest';
import { DataError, OptionError } from '../../src/common/index.js';
import { arraySource, calibrate } from '../../src/calibration/index.js';
import { readModel } from '../../src/onnx/index.js';
import {
  PROFILE_FORMAT, cacheEntry, cacheHeader, float32Bits, tensorrtCalibrationCache, type CalibrationProfile, type TensorCalibration,
} from '../../src/quant/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { paths } from '../helpers/paths.js';
import { thrown } from '../helpers/thrown.js';

/** The float32 bit pattern of x, worked out through a typed-array view rather than a DataView. */
function bitsOf(x: number): string {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0].toString(16);
}

/** The float a cache's hex stands for (a plain IEEE-754 decode). */
function floatOf(hex: string): number {
  const u = new Uint32Array([parseInt(hex, 16)]);
  return new Float32Array(u.buffer)[0];
}

const hexFor = (min: number, max: number) => cacheEntry('t', { min, max }).hex;

function profileWith(tensors: Record<string, [number, number]>, extra: Partial<CalibrationProfile> = {}): CalibrationProfile {
  const entries = Object.entries(tensors).map(([name, [min, max]]): [string, TensorCalibration] => [name, { min, max, scale: 1, zeroPoint: 0, type: 'int8' }]);
  return {
    format: PROFILE_FORMAT, calibdVersion: 'test', createdAt: '', sourceModelSha256: '', method: 'minmax', options: {},
    sampleCount: 1, rejectedSamples: 0, qdqDomain: 'ai.onnx', quantizedNodes: 1, excludedNodes: [], tensors: Object.fromEntries(entries), ...extra,
  };
}

describe('scale encoding', () => {
  it('amax 127 is scale 1, 3f800000', () => {
    expect(hexFor(-3, 127)).toBe('3f800000');
    expect(float32Bits(1)).toBe(0x3f800000);
  });

  it('amax 1 is scale 1/127: 3c010204 by hand (1/127 = 2^-7·(1 + 2^-7 + 2^-14 + …), rounded down), and by a typed array', () => {
    expect(hexFor(0, 1)).toBe('3c010204');
    expect(hexFor(0, 1)).toBe(bitsOf(1 / 127));
  });

  it('a negative min that dominates sets amax: [-254, 3] is scale 2, 40000000', () => {
    expect(hexFor(-254, 3)).toBe('40000000');
    expect(cacheEntry('t', { min: -254, max: 3 }).amax).toBe(254);
  });

  it('the scale is amax/127 rounded to float32, for ranges of every size', () => {
    for (const [min, max] of [[-0.3, 5.7], [0, 6], [-1e-3, 2e-4], [-123456, 7], [0, 0.1]]) {
      const amax = Math.max(-min, max);
      expect(hexFor(min, max)).toBe(bitsOf(amax / 127));
    }
  });

  it('a range of [0, 0] is written with scale 1, never 0 (ORT would read 0 as 2^-127, TensorRT refuses it)', () => {
    expect(hexFor(0, 0)).toBe('3f800000');
    expect(cacheEntry('t', { min: 0, max: 0 }).scale).toBe(1);
  });

  it('hex is lowercase and unpadded: scale 2^-100 is d800000 (seven digits)', () => {
    expect(hexFor(0, 127 * 2 ** -100)).toBe('d800000');
  });

  it('a scale below the smallest normal float32 is treated like a zero range', () => {
    expect(hexFor(0, 127 * 2 ** -130)).toBe('3f800000');
  });
});

describe('refusals', () => {
  it("a tensor name holding ':' (ORT cuts each line at the first ':')", () => {
    const err = thrown(DataError, () => tensorrtCalibrationCache(profileWith({ ok: [0, 1], 'onnx::Conv_7': [0, 2] })));
    expect(err.value).toBe('onnx::Conv_7');
    expect(err.oneLine()).toMatch(/^tensor 'onnx::Conv_7' holds ':', which TensorRT's calibration cache cannot carry .*: rename the tensor/);
    expect(err.oneLine()).not.toContain('\n');
  });

  it('a tensor name holding a line break', () => {
    const err = thrown(DataError, () => cacheEntry('a\nb', { min: 0, max: 1 }));
    expect(err.oneLine()).toMatch(/tensor 'a\\u000ab' holds a line break/);
  });

  it('a non-finite range', () => {
    const err = thrown(DataError, () => cacheEntry('x', { min: -Infinity, max: 1 }));
    expect(err.message).toBe("tensor 'x' has the non-finite range [-Infinity, 1]");
    thrown(DataError, () => cacheEntry('x', { min: 0, max: NaN }));
  });

  it('a version that is not a positive integer', () => {
    thrown(OptionError, () => cacheHeader(0));
    thrown(OptionError, () => cacheHeader(86.1));
  });
});

describe('the cache text', () => {
  it('header with the default version 8601, or a custom one', () => {
    expect(cacheHeader()).toBe('TRT-8601-EntropyCalibration2');
    expect(cacheHeader(10300)).toBe('TRT-10300-EntropyCalibration2');
    const text = tensorrtCalibrationCache(profileWith({ a: [0, 127] }), { trtVersion: 8502 }).text;
    expect(text).toBe('TRT-8502-EntropyCalibration2\na: 3f800000\n');
  });

  it("leaves out tensors equalization rescaled (their ranges do not hold in the FP32 model)", () => {
    const cache = tensorrtCalibrationCache(profileWith({ a: [0, 127], b: [-1, 1], c: [0, 254] }, { rescaledTensors: ['b'] }));
    expect(cache.rescaled).toEqual(['b']);
    expect(cache.text).toBe('TRT-8601-EntropyCalibration2\na: 3f800000\nc: 40000000\n');
  });
});

describe('the bundled MNIST CNN, calibrated from 200 training digits', () => {
  let cache: ReturnType<typeof tensorrtCalibrationCache>;
  let profile: CalibrationProfile;
  beforeAll(async () => {
    const { train } = loadMnistSplit();
    const source = arraySource({ input: { data: train.images.subarray(0, 200 * IMAGE_SIZE), dims: [200, 1, 28, 28] } });
    ({ profile } = await calibrate(readModel(paths.mnistModel), source, { method: 'mse' }));
    cache = tensorrtCalibrationCache(profile);
  });

  it('writes the header, then one "name: hex" line per calibrated tensor', () => {
    const lines = cache.text.split('\n');
    expect(lines.pop()).toBe(''); // the text ends with a line break
    expect(lines[0]).toBe('TRT-8601-EntropyCalibration2');
    expect(lines.length - 1).toBe(Object.keys(profile.tensors).length);
    for (const line of lines.slice(1)) expect(line).toMatch(/^[^:]+: [0-9a-f]+$/);
  });

  it('reads back, as ORT does (hex → float32 → ×127), to each tensor’s amax within float32 rounding', () => {
    const lines = cache.text.trimEnd().split('\n').slice(1);
    for (const line of lines) {
      const cut = line.indexOf(':');
      const name = line.slice(0, cut);
      const range = Math.fround(floatOf(line.slice(cut + 1).trim()) * 127);
      const t = profile.tensors[name];
      const amax = Math.max(Math.abs(t.min), Math.abs(t.max));
      expect(amax).toBeGreaterThan(0);
      expect(Math.abs(range - amax)).toBeLessThanOrEqual(amax * 2 ** -22);
    }
  });
});

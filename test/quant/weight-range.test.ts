// Which weight range a CPU's kernels can accumulate without saturating, and the int32 bias guard.
import { describe, expect, it } from 'vitest';
import { activationParams, activationTypeFor, fitBiasToInt32, quantizeBias, resolveActivationType, weightRangeFor } from '../../src/quant/index.js';

describe('weight range by CPU', () => {
  it('x86 without VNNI gets 7-bit weights; VNNI and ARM keep 8 bits', () => {
    expect(weightRangeFor('x64', ['sse4_2', 'avx2', 'fma'])).toBe('reduced');
    expect(weightRangeFor('x64', ['avx2', 'avx512f', 'avx512_vnni'])).toBe('full');
    expect(weightRangeFor('x64', ['avx2', 'avx_vnni'])).toBe('full');
    expect(weightRangeFor('arm64', ['fp', 'asimd'])).toBe('full');
  });

  it('the reduced range keeps every u8×s8 pair sum inside int16', () => {
    expect(255 * 63 * 2).toBeLessThanOrEqual(32767);
    expect(255 * 127 * 2).toBeGreaterThan(32767);
  });
});

describe('fitBiasToInt32', () => {
  it('widens only the channels whose bias would overflow int32', () => {
    const scales = Float64Array.of(1e-37, 0.01);
    const bias = [0.5, 0.5];
    expect(fitBiasToInt32(bias, 0.02, scales)).toBe(1);
    expect(scales[1]).toBe(0.01);
    const { values } = quantizeBias(bias, 0.02, scales);
    expect(Math.abs(values[0])).toBeLessThan(2 ** 31 - 1);
    // The dequantized bias is still the bias.
    expect(values[0] * 0.02 * scales[0]).toBeCloseTo(0.5, 6);
  });
});

describe('activation type by platform', () => {
  it('auto is int8 on arm64 (ORT fuses S8S8 there) and uint8 elsewhere; symmetric is always int8', () => {
    expect(activationTypeFor('arm64')).toBe('int8');
    expect(activationTypeFor('x64')).toBe('uint8');
    expect(resolveActivationType('auto', false, 'arm64')).toBe('int8');
    expect(resolveActivationType(undefined, false, 'x64')).toBe('uint8');
    expect(resolveActivationType('uint8', false, 'arm64')).toBe('uint8');
    expect(resolveActivationType('uint8', true, 'x64')).toBe('int8');
  });

  it('int8 asymmetric parameters are uint8 ones shifted by 128: same scale, same grid', () => {
    for (const range of [{ min: -1.5, max: 4 }, { min: 0, max: 6 }, { min: -3, max: -0.5 }, { min: 0, max: 0 }]) {
      const u = activationParams(range, { type: 'uint8' });
      const s = activationParams(range, { type: 'int8' });
      expect(s.type).toBe('int8');
      expect(s.scale).toBe(u.scale);
      expect(s.zeroPoint).toBe(u.zeroPoint - 128);
    }
  });
});

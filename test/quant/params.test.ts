import { describe, expect, it } from 'vitest';
import { activationParams, fakeQuantize, quantizeBias, quantizeWeights, weightScales } from '../../src/quant/index.js';
import { OptionError } from '../../src/common/index.js';

describe('activation parameters', () => {
  it('uint8 asymmetric: the range widens to contain 0 and 0 is exact', () => {
    for (const r of [{ min: 0, max: 6 }, { min: -1.3, max: 4.2 }, { min: 0.5, max: 2 }, { min: -3, max: -1 }]) {
      const p = activationParams(r);
      expect(p.type).toBe('uint8');
      expect(p.zeroPoint).toBeGreaterThanOrEqual(0);
      expect(p.zeroPoint).toBeLessThanOrEqual(255);
      expect(fakeQuantize(0, p)).toBe(0);
      const lo = Math.min(0, r.min);
      const hi = Math.max(0, r.max);
      // Every value of the range is represented within half a step.
      for (let i = 0; i <= 100; i++) {
        const x = lo + ((hi - lo) * i) / 100;
        expect(Math.abs(fakeQuantize(x, p) - x)).toBeLessThanOrEqual(p.scale / 2 + 1e-9 + Math.abs(hi - lo) / 255);
      }
    }
  });

  it('Relu-like range [0, max] gets zero-point 0, as ORT needs to drop the Relu', () => {
    expect(activationParams({ min: 0, max: 3 }).zeroPoint).toBe(0);
  });

  it('symmetric int8 and reduce_range', () => {
    const s = activationParams({ min: -2, max: 1 }, { symmetric: true });
    expect(s).toEqual({ scale: 2 / 127, zeroPoint: 0, type: 'int8' });
    expect(activationParams({ min: 0, max: 2.55 }, { symmetric: true })).toEqual({ scale: 2.55 / 255, zeroPoint: -128, type: 'int8' });
    const rr = activationParams({ min: 0, max: 127 }, { reduceRange: true });
    expect(rr.scale).toBeCloseTo(1, 12);
  });

  it('degenerate and invalid ranges', () => {
    expect(activationParams({ min: 0, max: 0 }).scale).toBeGreaterThan(0);
    expect(() => activationParams({ min: 2, max: 1 })).toThrow(OptionError);
    expect(() => activationParams({ min: NaN, max: 1 })).toThrow(/invalid range/);
  });
});

describe('weights and bias', () => {
  const dims = [2, 3];
  const w = [0.5, -1, 0.25, 4, 2, -8];
  it('per-channel symmetric scales along axis 0 and 1', () => {
    expect(Array.from(weightScales(w, dims, 0))).toEqual([1 / 127, 8 / 127]);
    expect(Array.from(weightScales(w, dims, 1))).toEqual([4 / 127, 2 / 127, 8 / 127]);
    expect(Array.from(weightScales(w, dims, null))).toEqual([8 / 127]);
    expect(Array.from(weightScales([0, 0], [2], 0))).toEqual([1, 1]);
  });
  it('quantized weights stay in [-127, 127] and round to the nearest step', () => {
    const s = weightScales(w, dims, 0);
    const q = quantizeWeights(w, dims, 0, s);
    expect(Array.from(q)).toEqual([64, -127, 32, 64, 32, -127]);
  });
  it('int32 bias uses x_scale × w_scale[c]', () => {
    const { values, scales } = quantizeBias([0.1, -0.2], 0.02, Float64Array.of(0.5, 0.25));
    expect(Array.from(scales)).toEqual([0.01, 0.005]);
    expect(Array.from(values)).toEqual([10, -40]);
  });
});

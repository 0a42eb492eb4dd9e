// Bias correction's shift against a direct computation: on inputs that are constant per
// channel (where ignoring padding is exact), the INT8 layer's output moves by exactly the
// shift, and subtracting it from the bias restores the FP32 output.
import { describe, expect, it } from 'vitest';
import { dequantizeWeights, quantizeWeights, weightScales, weightShift } from '../../src/quant/index.js';
import { mulberry32 } from '../../src/common/index.js';

/** A grouped Conv over a 1×1 input (kernel k×k, 'same' weights summed): y[o] = Σ W[o,c,·]·x[c]. */
function convOnConstant(w: ArrayLike<number>, dims: number[], group: number, x: number[]): number[] {
  const [m, cg] = dims;
  const kernel = dims.slice(2).reduce((a, b) => a * b, 1);
  const y: number[] = [];
  for (let o = 0; o < m; o++) {
    const first = Math.floor(o / (m / group)) * cg;
    let s = 0;
    for (let c = 0; c < cg; c++) for (let k = 0; k < kernel; k++) s += w[(o * cg + c) * kernel + k] * x[first + c];
    y.push(s);
  }
  return y;
}

describe('weightShift', () => {
  const rand = mulberry32(7);
  const cases: [string, number[], number][] = [['dense conv', [6, 4, 3, 3], 1], ['depthwise conv', [8, 1, 5, 5], 8], ['grouped conv', [6, 2, 3, 3], 2]];
  for (const [name, dims, group] of cases) {
    it(`${name}: the INT8 output moves by exactly the shift`, () => {
      const n = dims.reduce((a, b) => a * b, 1);
      const w = Array.from({ length: n }, () => (rand() - 0.5) * 0.8);
      const scales = weightScales(w, dims, 0, true);
      const wq = dequantizeWeights(quantizeWeights(w, dims, 0, scales), dims, 0, scales);
      const x = Array.from({ length: dims[1] * group }, () => rand() * 3 - 0.5);
      const shift = weightShift(w, wq, { kind: 'conv', dims, group }, x);
      const ref = convOnConstant(w, dims, group, x);
      const q = convOnConstant(wq, dims, group, x);
      for (let o = 0; o < dims[0]; o++) expect(q[o] - ref[o]).toBeCloseTo(shift[o], 12);
      expect(shift.some((s) => Math.abs(s) > 1e-6)).toBe(true);
    });
  }

  it('gemm, transB 0 and 1: the same shift for the same matrix', () => {
    const k = 5;
    const nOut = 3;
    const b = Array.from({ length: k * nOut }, () => rand() - 0.5); // [K, N]
    const bq = b.map((v) => Math.round(v * 20) / 20);
    const x = Array.from({ length: k }, () => rand());
    const direct = Array.from({ length: nOut }, (_, o) => x.reduce((s, xi, i) => s + (bq[i * nOut + o] - b[i * nOut + o]) * xi, 0));
    const t = (m: number[]) => Array.from({ length: k * nOut }, (_, i) => m[(i % k) * nOut + Math.floor(i / k)]); // → [N, K]
    const s0 = weightShift(b, bq, { kind: 'gemm', dims: [k, nOut], transB: false }, x);
    const s1 = weightShift(t(b), t(bq), { kind: 'gemm', dims: [nOut, k], transB: true }, x);
    for (let o = 0; o < nOut; o++) {
      expect(s0[o]).toBeCloseTo(direct[o], 12);
      expect(s1[o]).toBeCloseTo(direct[o], 12);
    }
  });
});

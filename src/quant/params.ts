// Quantization parameters: the affine map q = clamp(round(x / scale) + zeroPoint) for
// activations (per tensor), weights (symmetric, per output channel) and biases (int32).
// Pure math on numbers and typed arrays.

import { OptionError } from '../common/index.js';

export interface Range {
  min: number;
  max: number;
}

export type QuantType = 'uint8' | 'int8';

export interface QuantParams {
  scale: number;
  zeroPoint: number;
  type: QuantType;
}

export interface ActivationQuantOptions {
  /**
   * int8 with zero-point 0 instead of uint8 asymmetric; a tensor with no negative values
   * (min = 0) gets zero-point -128 so that it keeps all 256 levels.
   */
  symmetric?: boolean;
  /**
   * With symmetric: zero-point 0 for every tensor, non-negative ones too (scale amax/127),
   * as TensorRT's INT8 has no other (target.ts).
   */
  zeroPointZero?: boolean;
  /** Type of an asymmetric range (default uint8); symmetric ranges are always int8. */
  type?: 'uint8' | 'int8';
  /** Use 7 bits: avoids overflow in the u8×s8 instructions of CPUs without VNNI. */
  reduceRange?: boolean;
}

/** The integer bounds of a quantized type. */
export function qBounds(type: QuantType, reduceRange = false): [number, number] {
  if (type === 'uint8') return reduceRange ? [0, 127] : [0, 255];
  return reduceRange ? [-64, 63] : [-128, 127];
}

/**
 * Scale and zero-point for an activation range. The range is widened to contain 0 so
 * that zero (padding, Relu's floor) is represented exactly.
 */
export function activationParams(range: Range, opts: ActivationQuantOptions = {}): QuantParams {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max) || range.min > range.max) {
    throw new OptionError(`invalid range [${range.min}, ${range.max}]`, {
      value: range,
      hint: 'a range needs finite min <= max; recalibrate with finite samples',
    });
  }
  let lo = Math.min(0, range.min);
  let hi = Math.max(0, range.max);
  if (opts.symmetric) {
    const [qmin, qmax] = qBounds('int8', opts.reduceRange);
    if (lo === 0 && !opts.zeroPointZero) {
      // A non-negative tensor (a Relu output) uses the whole int8 range with zero-point
      // qmin: no resolution lost, and ORT only drops a Relu before Q when zp == qmin.
      return { scale: hi > 0 ? hi / (qmax - qmin) : 1, zeroPoint: qmin, type: 'int8' };
    }
    const absMax = Math.max(-lo, hi);
    return { scale: absMax > 0 ? absMax / qmax : 1, zeroPoint: 0, type: 'int8' };
  }
  // Asymmetric: uint8, or int8 with the same resolution (activation-type.ts says which).
  const type = opts.type ?? 'uint8';
  const [qmin, qmax] = qBounds(type, opts.reduceRange);
  if (hi - lo === 0) hi = 1; // an all-zero tensor: any scale represents it exactly
  const scale = (hi - lo) / (qmax - qmin);
  const zeroPoint = clamp(Math.round(qmin - lo / scale), qmin, qmax);
  return { scale, zeroPoint, type };
}

/**
 * Symmetric int8 scales for a weight tensor, one per slice along `axis` (per channel), or
 * one for the whole tensor when axis is null. Values are in row-major order of `dims`.
 * Uses [-127, 127] so that the negated range is representable too.
 */
export function weightScales(values: ArrayLike<number>, dims: readonly number[], axis: number | null, reduceRange = false): Float64Array {
  const qmax = reduceRange ? 63 : 127;
  if (axis === null) {
    let m = 0;
    for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
    return Float64Array.of(m > 0 ? m / qmax : 1);
  }
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const absMax = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const v = Math.abs(values[i]);
    if (v > absMax[c]) absMax[c] = v;
  }
  return absMax.map((m) => (m > 0 ? m / qmax : 1));
}

/** Quantizes weights to int8 with per-slice scales (zero-point 0). */
export function quantizeWeights(values: ArrayLike<number>, dims: readonly number[], axis: number | null, scales: Float64Array): Int8Array {
  const out = new Int8Array(values.length);
  const channels = axis === null ? 1 : dims[axis];
  const inner = axis === null ? values.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < values.length; i++) {
    const c = axis === null ? 0 : Math.floor(i / inner) % channels;
    out[i] = clamp(Math.round(values[i] / scales[c]), -127, 127);
  }
  return out;
}

/** int32 bias with scale inputScale × weightScale[c] and zero-point 0, as ORT's integer kernels expect. */
export function quantizeBias(bias: ArrayLike<number>, inputScale: number, weightScales: Float64Array): { values: Int32Array; scales: Float64Array } {
  const scales = new Float64Array(bias.length);
  const values = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const s = inputScale * (weightScales.length === 1 ? weightScales[0] : weightScales[c]);
    scales[c] = s;
    values[c] = clamp(Math.round(bias[c] / s), -(2 ** 31), 2 ** 31 - 1);
  }
  return { values, scales };
}

/** Largest |int32 bias| allowed: a margin under 2^31 for the kernels' own additions. */
const BIAS_LIMIT = 2 ** 30;

/**
 * Widens weight scales (in place, float32-exact) where bias / (x_scale × w_scale) would not
 * fit int32; a per-tensor scale (length 1) serves every channel, as in quantizeBias.
 * Returns how many scales were widened.
 */
export function fitBiasToInt32(bias: ArrayLike<number>, inputScale: number, weightScales: Float64Array): number {
  let widened = 0;
  for (let c = 0; c < bias.length; c++) {
    const k = weightScales.length === 1 ? 0 : c;
    const need = Math.abs(bias[c]) / (inputScale * BIAS_LIMIT);
    if (weightScales[k] < need) {
      weightScales[k] = Math.fround(need * 1.0001);
      widened++;
    }
  }
  return widened;
}

/** Quantize then dequantize one value: what the INT8 model sees in place of x. */
export function fakeQuantize(x: number, p: QuantParams, reduceRange = false): number {
  const [qmin, qmax] = qBounds(p.type, reduceRange);
  return (clamp(Math.round(x / p.scale) + p.zeroPoint, qmin, qmax) - p.zeroPoint) * p.scale;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

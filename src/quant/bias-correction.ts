// Bias correction (Nagel et al. 2019, "Data-Free Quantization", section 4.2): rounding the
// weights to int8 moves each output channel's mean by (W_q - W)·E[x]. Subtracting that shift
// from the bias gives the INT8 layer the FP32 layer's expected output. Pure math on arrays.
//
// Padding is ignored (E[x] is taken as the same at every position), as in the paper.
//
// Three ways to get there (BIAS_CORRECTIONS):
//   datafree    the shift (W_q - W)·E[x] with E[x] from the BatchNorm statistics before the
//               layer (calibration/datafree.ts), so it needs no samples at all;
//   analytical  the shift (W_q - W)·E[x] from the FP32 input's channel means, per layer;
//   empirical   the mean error actually measured at each layer's output in the INT8 model,
//               layer by layer in graph order, so it also absorbs what activation
//               quantization and the layers before it shifted (calibration/bias-correction.ts).

import { forEachConvWeight } from '../onnx/index.js';

export const BIAS_CORRECTIONS = ['none', 'datafree', 'analytical', 'empirical'] as const;
export type BiasCorrection = (typeof BIAS_CORRECTIONS)[number];

export interface ConvLayout {
  /** 'conv': W [M, C/group, k…]; 'gemm': B [N, K] with transB, else [K, N]. */
  kind: 'conv' | 'gemm';
  dims: readonly number[];
  group?: number;
  transB?: boolean;
}

/**
 * The expected output shift per output channel caused by using `wq` (the dequantized
 * weights) in place of `w`, for inputs whose per-channel means are `inputMean`.
 */
export function weightShift(w: ArrayLike<number>, wq: ArrayLike<number>, layout: ConvLayout, inputMean: ArrayLike<number>): Float64Array {
  const d = layout.dims;
  if (layout.kind === 'gemm') {
    const [rows, cols] = d;
    const n = layout.transB ? rows : cols;
    const shift = new Float64Array(n);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const [out, k] = layout.transB ? [r, c] : [c, r];
        shift[out] += (wq[i] - w[i]) * inputMean[k];
      }
    }
    return shift;
  }
  const shift = new Float64Array(d[0]);
  forEachConvWeight(d, layout.group ?? 1, (k, o, i) => {
    shift[o] += (wq[k] - w[k]) * inputMean[i];
  });
  return shift;
}

/** The per-channel dequantized weights q × scale (scale per slice along `axis`, or one). */
export function dequantizeWeights(q: ArrayLike<number>, dims: readonly number[], axis: number | null, scales: ArrayLike<number>): Float64Array {
  const out = new Float64Array(q.length);
  const channels = axis === null ? 1 : dims[axis];
  const inner = axis === null ? q.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < q.length; i++) out[i] = q[i] * scales[axis === null ? 0 : Math.floor(i / inner) % channels];
  return out;
}

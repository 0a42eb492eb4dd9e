// MatMul: a 2-D weight B[K, N] gets one scale per output column (axis 1); a batched weight
// one scale for the tensor. MatMul has no bias input (ORT's basic pass fuses MatMul + Add
// into Gemm where it can).

import { computeRule } from './compute.js';

export const matmul = computeRule({
  weightAxis: (_node, dims) => (dims.length === 2 ? 1 : null),
  int32Bias: () => null,
  floatGraphOutput: true,
});

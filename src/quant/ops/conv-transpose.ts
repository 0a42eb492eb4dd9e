// ConvTranspose, for TensorRT only: W is [C_in, C_out/group, kH, kW, …], and TensorRT's
// deconvolution kernels take its weights per channel along axis 0 (target.ts). The 'ort'
// target leaves it FP32, as it always has: its fusion on ONNX Runtime's CPU kernels has
// not been measured here.

import { computeRule, floatVector } from './compute.js';

export const convTranspose = computeRule({
  weightAxis: () => 0,
  int32Bias: (node, index) => (floatVector(node, index, 2) ? 2 : null),
  floatGraphOutput: false,
  targets: ['tensorrt'],
});

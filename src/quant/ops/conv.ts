// Conv: W is [M, C/group, kH, kW, …], one scale per output channel (axis 0); any 1-D float
// bias becomes int32. A Conv whose reduction per output value is below `minConvReduction`
// stays FP32: ORT's QLinearConv is slower than FP32 for depthwise and few-channel convs.

import { computeRule, floatVector } from './compute.js';

export const conv = computeRule({
  weightAxis: () => 0,
  int32Bias: (node, index) => (floatVector(node, index, 2) ? 2 : null),
  staysFp32(weight, plan) {
    const min = plan.settings.minConvReduction;
    if (min <= 0) return false;
    // Everything after axis 0 is summed per output value.
    return weight.dims.slice(1).reduce((a, d) => a * Number(d), 1) < min;
  },
  floatGraphOutput: false,
});

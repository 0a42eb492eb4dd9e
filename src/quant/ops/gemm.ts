// Gemm: B is [K, N], or [N, K] with transB; one scale per output column. The bias C becomes
// int32 only when its scale can be x_scale × w_scale, which alpha or beta ≠ 1 would change,
// and when it is one value per output column.

import { attrInt } from '../../onnx/index.js';
import { computeRule, floatVector } from './compute.js';

export const gemm = computeRule({
  weightAxis: (node) => (attrInt(node, 'transB', 0) ? 0 : 1),
  int32Bias(node, index, dims) {
    const bias = floatVector(node, index, 2);
    if (!bias) return null;
    const alpha = node.attribute.find((a) => a.name === 'alpha')?.f ?? 1;
    const beta = node.attribute.find((a) => a.name === 'beta')?.f ?? 1;
    if (alpha !== 1 || beta !== 1) return null;
    const columns = attrInt(node, 'transB', 0) ? dims[0] : dims[1];
    return Number(bias.dims[0]) === columns ? 2 : null;
  },
  floatGraphOutput: true,
});

// The FP32 graph that calibration measures and the INT8 graph is built from: an opset-9
// model lifted to opset 10 (the first with integer kernels), ORT's 'basic' pass (constants,
// BN folding, MatMul+Add → Gemm), then calibd's own exact rewrites that remove rounding
// points from the INT8 graph. One function, so the calibrator, `eval` and
// the per-layer analysis all compare against the same graph.

import { foldAffineIntoConv, foldConvAffine, fuseHardSwish, liftToOpset10, type ModelProto } from '../onnx/index.js';
import { optimizeBasic } from '../runtime/index.js';

export async function prepareModel(fp32: ModelProto, source = 'model'): Promise<ModelProto> {
  const optimized = await optimizeBasic(liftToOpset10(fp32).model, source);
  const hardSwish = fuseHardSwish(optimized).model;
  return foldAffineIntoConv(foldConvAffine(hardSwish).model).model;
}

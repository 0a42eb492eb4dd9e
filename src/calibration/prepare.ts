// The FP32 graph that calibration measures and the INT8 graph is built from: an opset-9
// model lifted to opset 10 (the first with integer kernels), ORT's 'basic' pass (constants,
// BN folding, MatMul+Add → Gemm), then calibd's own exact rewrites that remove rounding
// points from the INT8 graph. For TensorRT, lifted on to opset 13, whose DequantizeLinear
// takes the per-channel axis TensorRT's weights need; the lift keeps every tensor's name
// and value. One function, so the calibrator, `eval` and the per-layer analysis all compare
// against the same graph.

import { foldAffineIntoConv, foldConvAffine, fuseHardSwish, liftToOpset10, liftToOpset13, type ModelProto } from '../onnx/index.js';
import type { QuantTarget } from '../quant/index.js';
import { optimizeBasic } from '../runtime/index.js';

export async function prepareModel(fp32: ModelProto, source = 'model', target: QuantTarget = 'ort'): Promise<ModelProto> {
  const optimized = await optimizeBasic(liftToOpset10(fp32).model, source);
  const hardSwish = fuseHardSwish(optimized).model;
  const folded = foldAffineIntoConv(foldConvAffine(hardSwish).model).model;
  return target === 'tensorrt' ? liftToOpset13(folded).model : folded;
}

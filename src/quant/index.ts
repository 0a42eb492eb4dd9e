// Quantization math, the QDQ rewrite and the calibration metadata stored in INT8 models.
export {
  activationParams, weightScales, quantizeWeights, quantizeBias, fitBiasToInt32, fakeQuantize, qBounds,
  type Range, type QuantParams, type QuantType, type ActivationQuantOptions,
} from './params.js';
export { planQuantization, tensorsToCalibrate, type QuantizeOptions, type QuantizationPlan } from './plan.js';
export { quantizeModel, type QuantizeResult, type QuantizedTensorInfo, type QuantizeStatistics } from './qdq.js';
export { dequantizedName, parseQdqNodeName, type QdqNodeKind } from './naming.js';
export {
  COMPUTE_OPS, CHAINED_OPS, SHARED_PARAM_OPS, FP32_FUSED_ACTIVATIONS, QDQ_ABSORBED_ACTIVATIONS, resultTensor,
} from './ops/index.js';
export {
  writeProfile, readProfile, sha256, graphSha256, METADATA_KEY, PROFILE_FORMAT,
  type CalibrationProfile, type TensorCalibration,
} from './metadata.js';
export { resolveWeightRange, weightRangeFor, cpuFlags, WEIGHT_RANGES, type WeightRange, type WeightRangeChoice } from './weight-range.js';
export { weightShift, dequantizeWeights, BIAS_CORRECTIONS, type BiasCorrection, type ConvLayout } from './bias-correction.js';
export {
  findEqualizationPairs, equalizeModel, equalizationFactors, EQUALIZATIONS,
  type Equalization, type EqualizationPair, type ChannelRange, type EqualizeResult,
} from './equalize.js';
export { saturationInterval, saturationIntervals, clampRange } from './saturation.js';
export { ACTIVATION_TYPES, activationTypeFor, resolveActivationType, type ActivationType, type ActivationTypeChoice } from './activation-type.js';
export {
  tensorrtCalibrationCache, cacheEntry, cacheHeader, cacheScale, float32Bits, DEFAULT_TRT_VERSION, EXPORT_FORMATS,
  type CacheEntry, type TensorRTCache, type ExportFormat,
} from './tensorrt-cache.js';
export { QUANT_TARGETS, checkTargetOptions, resolveTargetOptions, targetWeightRange, type QuantTarget } from './target.js';

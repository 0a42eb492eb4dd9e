// Per-op quantization rules and the registry that maps op types to them.
export { ruleFor, COMPUTE_OPS, CHAINED_OPS, SHARED_PARAM_OPS, ORT_SELF_QUANTIZED_OPS, FP32_FUSED_ACTIVATIONS } from './registry.js';
export { PlanBuilder, resultTensor, QDQ_ABSORBED_ACTIVATIONS, type OpCategory, type OpRule, type PlannedWeight, type PlanSettings } from './rule.js';

// ONNX Runtime: sessions, the normalising 'basic' pass, and the activation tap.
export { createSession, optimizeBasic, ort, type SessionOptions } from './session.js';
export { ActivationTap, type Feeds } from './tap.js';
export {
  InferenceEngine, RequestError, EngineUnavailableError,
  type Datatype, type TensorMeta, type InferInput, type DeclaredInput, type InferOutput, type InferResult, type OutputData,
  type EngineOptions, type EngineStats, type PreparedSwap,
} from './engine.js';
export { profileModel, parseProfileTrace, attributeKernelTimes, isActivationHop, type KernelTime, type ProfileOptions, type Attribution } from './profile.js';
export { interleaved, percentile, type Variant, type TimingResult } from './timing.js';

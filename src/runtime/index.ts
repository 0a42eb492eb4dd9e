// ONNX Runtime: sessions, the normalising 'basic' pass, and the activation tap.
export { createSession, optimizeBasic, ort, type SessionOptions } from './session.js';
export { ActivationTap, type Feeds } from './tap.js';

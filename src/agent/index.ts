// The daemon's policy: sampling, recalibration triggers, the validation gate, hot-swap
// and rollback, and the worker thread that does the calibration work.
export { CalibrationAgent, isHoldout, type AgentEvent, type AgentLogger, type RecalibrationResult, type StateIo } from './agent.js';
export { DriftMonitor, psi, type DriftOptions } from './drift.js';
export { gate, type Figures, type GateDecision } from './gate.js';
export { CalibrationWorker, WorkerError } from './worker-client.js';
export { agentMetrics } from './metrics.js';

// The daemon's policy: sampling, recalibration triggers, the validation gate, hot-swap
// and rollback, the admin commands, and the worker thread that does the calibration work.
export { CalibrationAgent, type AgentCounters, type AgentEvent, type RecalibrationResult, type StateIo } from './agent.js';
export { commandNames, commands, checkArguments, isCommandName, runCommand, type CommandName, type CommandTarget } from './commands.js';
export { DriftMonitor, psi, type DriftOptions } from './drift.js';
export { gate, type Figures, type GateDecision } from './gate.js';
export { isHoldout, HOLDOUT_EVERY } from './sampler.js';
export { afterSampleTrigger, everyNInferencesDue, type Trigger } from './trigger-policy.js';
export { CalibrationWorker, WorkerError } from './worker-client.js';
export { agentMetrics } from './metrics.js';

// The contract between the HTTP layer and the daemon: what the server needs to serve and
// to expose the agent's admin actions, without importing the agent itself.
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { CommandTarget } from '../agent/commands.js';
import type { HttpConfig } from '../config/index.js';
import type { InferenceEngine } from '../runtime/index.js';
import type { PreprocessSpec } from '../images/index.js';

export interface ApiDeps {
  engine: InferenceEngine;
  modelName: string;
  /**
   * Called after each successful inference with the validated inputs, the outputs and the
   * engine's latency (the daemon samples and times from here; must not block).
   */
  onInference?: (
    inputs: Record<string, { shape: number[]; data: Float32Array }>,
    outputs: Record<string, { shape: number[]; data: Float32Array }>,
    latencyMs: number,
  ) => void;
  admin: AdminControl;
  /** How BYTES inputs (encoded images) become tensors; without it they are refused. */
  preprocess?: PreprocessSpec | null;
  /** The daemon's metrics (agent/metrics.ts: drift, buffer, calibration totals), appended to GET /metrics. */
  metrics?: Registry;
}

/** The part of the agent the admin routes run their commands on (agent/commands.ts). */
export type AdminControl = Pick<CommandTarget, 'status' | 'calibrations' | 'recalibrate' | 'rollback'>;

/**
 * The config's http section (see src/config/schema.ts for each key; with a token, admin
 * routes and /metrics need `Authorization: Bearer <token>`), and a logger.
 */
export interface ApiOptions extends HttpConfig {
  /** A pino logger (or any Fastify-compatible one); no request logging when absent. */
  logger?: FastifyBaseLogger;
}

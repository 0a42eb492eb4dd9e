// The contract between the HTTP layer and the daemon: what the server needs to serve and
// to expose the agent's admin actions, without importing the agent itself.
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
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
  /** Extra metrics (agent, buffer, health) appended to GET /metrics. */
  metrics?: Registry;
}

export interface AdminControl {
  /** JSON for GET /v2/calibd/status. */
  status(): unknown;
  recalibrate(req: { method?: string; full?: boolean }): Promise<{ version: number; state: 'accepted' | 'rejected' | 'unchanged'; figures: Record<string, number> }>;
  rollback(req: { version?: number }): Promise<{ version: number }>;
  calibrations(): unknown[];
}

/**
 * The config's http section (see src/config/schema.ts for each key; with a token, admin
 * routes and /metrics need `Authorization: Bearer <token>`), and a logger.
 */
export interface ApiOptions extends HttpConfig {
  /** A pino logger (or any Fastify-compatible one); no request logging when absent. */
  logger?: FastifyBaseLogger;
}

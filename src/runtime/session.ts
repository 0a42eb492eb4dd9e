// ONNX Runtime sessions: creation with calibd's defaults, typed errors, and the
// 'basic' optimisation pass calibd uses to normalise exported models.

import * as ort from 'onnxruntime-node';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelError } from '../common/index.js';
import { parseModel, serializeModel, type ModelProto } from '../onnx/index.js';

export interface SessionOptions {
  /** Intra-op threads (default 1: leaves a core to the rest of the device). */
  threads?: number;
  /** ORT graph optimisation level (default 'all', which fuses QDQ into integer kernels). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the optimised graph here (for inspection and tests). */
  optimizedModelFilePath?: string;
  /** Spinning pool threads cut latency but steal a core from the device; off by default. */
  allowSpinning?: boolean;
  /** Turn on ORT's profiler, writing JSON trace files with this prefix. */
  profileFilePrefix?: string;
  /**
   * ORT's CPU arena keeps every block it ever allocated for reuse (default on). Off for
   * runs whose output sets vary (a tap fetching tensor groups), where the arena would grow
   * to the union of them all.
   */
  memoryArena?: boolean;
}

export async function createSession(model: ModelProto | Uint8Array, opts: SessionOptions = {}, source = 'model'): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : serializeModel(model);
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: opts.optimization ?? 'all',
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: opts.memoryArena ?? true,
    extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' } } },
  };
  if (opts.optimizedModelFilePath) options.optimizedModelFilePath = opts.optimizedModelFilePath;
  if (opts.profileFilePrefix) {
    options.enableProfiling = true;
    options.profileFilePrefix = opts.profileFilePrefix;
  }
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (err) {
    throw new ModelError(`ONNX Runtime cannot load ${source}: ${firstLine(err)}`, {
      value: source,
      hint: 'check that the file is a valid ONNX model for the CPU execution provider',
      cause: err,
    });
  }
}

/**
 * Runs ORT's 'basic' graph optimisations and returns the optimised model: Constant nodes
 * become initializers, BatchNormalization folds into Conv, MatMul+Add fuse into Gemm.
 * Outputs are unchanged, and the result is plain ONNX (no ORT-specific ops).
 */
export async function optimizeBasic(model: ModelProto, source = 'model'): Promise<ModelProto> {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-opt-'));
  try {
    const path = join(dir, 'optimized.onnx');
    const session = await createSession(model, { optimization: 'basic', optimizedModelFilePath: path }, source);
    await session.release();
    const optimized = parseModel(readFileSync(path), `${source} (optimised)`);
    // ORT does not carry the model's metadata over; keep it.
    optimized.metadataProps = model.metadataProps;
    return optimized;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].slice(0, 300);
}

export { ort };

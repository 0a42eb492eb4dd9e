// Messages between the daemon and its calibration worker thread.

import type { ActivationTypeChoice } from '../quant/activation-type.js';
import type { CalibrationMethod, SelectionResult, StatisticsBundle } from '../calibration/index.js';
import type { CalibrationProfile } from '../quant/index.js';
import type { Figures } from './gate.js';
import type { BiasCorrection, Equalization } from '../quant/index.js';

export interface WireTensor {
  shape: number[];
  data: Float32Array;
}
export type WireSample = Record<string, WireTensor>;

export interface WorkerInit {
  fp32: Uint8Array;
  method: CalibrationMethod;
  perChannel: boolean;
  activationType: ActivationTypeChoice;
  biasCorrection: BiasCorrection;
  equalization: Equalization;
  /** Activation memory budget, MB (null: the default share of RAM). */
  maxMemoryMB: number | null;
  /** Weight kept by old statistics per learned sample. */
  forgetting: number;
  threads: number;
  inputRange: { min: number; max: number };
  /** Full input shapes (batch axis first) for inputs with free dimensions; null: none given. */
  inputShapes: Record<string, number[]> | null;
}

export interface Requests {
  /** `graph`: the key of the statistics' prepared graph (Calibrator.graphKey). */
  init: { req: WorkerInit; res: { tensors: string[]; graph: string } };
  /** Runs samples through the FP32 tap; `learn[i]` adds sample i to the statistics. */
  observe: { req: { samples: WireSample[]; learn: boolean[] }; res: { predictions: (number | null)[] } };
  /** Fresh statistics, optionally with another method (a full recalibration feeds them next). */
  restart: { req: { method?: CalibrationMethod }; res: { method: CalibrationMethod } };
  /**
   * `exclude`: nodes to leave FP32 (a cached selection); `selection` is recorded in the
   * profile. `ranges` (a fleet calibration) replace the worker's own statistics, and
   * `extra` is merged into the profile.
   */
  build: {
    req: { exclude?: string[]; selection?: SelectionResult; ranges?: Array<[string, number, number]>; extra?: Partial<CalibrationProfile> };
    res: { model: Uint8Array; profile: CalibrationProfile };
  };
  /** The worker's statistics so far, as a shareable bundle naming `device`. */
  stats: { req: { device: string }; res: StatisticsBundle };
  /** Runs the INT8-or-FP32 selection on the current statistics, validated on `samples`. */
  select: { req: { samples: WireSample[]; threads: number }; res: SelectionResult };
  datafree: { req: Record<string, never>; res: { model: Uint8Array; profile: CalibrationProfile } };
  compare: {
    /** `metric`: a task metric name, or null to infer it from the output. */
    req: { candidate: Uint8Array; current: Uint8Array | null; samples: WireSample[]; metric: string | null };
    res: { candidate: Figures; current: Figures | null };
  };
}

export type RequestType = keyof Requests;

export interface RequestMessage<T extends RequestType = RequestType> {
  id: number;
  type: T;
  payload: Requests[T]['req'];
}

export type ResponseMessage =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; code: string; hint: string } };

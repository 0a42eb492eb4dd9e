// The calibration record written into an INT8 model's metadata_props, so a model file
// explains itself: how it was calibrated, from what, with which ranges.

import { createHash } from 'node:crypto';
import { ModelError } from '../common/index.js';
import { getMetadata, serializeModel, setMetadata, type ModelProto } from '../onnx/index.js';
import type { QuantType } from './params.js';

export const METADATA_KEY = 'calibd.calibration';
export const PROFILE_FORMAT = 'calibd.calibration/1';

export interface TensorCalibration {
  min: number;
  max: number;
  scale: number;
  zeroPoint: number;
  type: QuantType;
}

export interface CalibrationProfile {
  format: typeof PROFILE_FORMAT;
  calibdVersion: string;
  createdAt: string;
  sourceModelSha256: string;
  method: string;
  options: Record<string, unknown>;
  sampleCount: number;
  /** Samples skipped because they held NaN or Infinity. */
  rejectedSamples: number;
  qdqDomain: string;
  quantizedNodes: number;
  excludedNodes: string[];
  tensors: Record<string, TensorCalibration>;
  /**
   * Tensors whose channels cross-layer equalization rescaled: the INT8 graph carries them
   * in other units than the FP32 model, so they are not compared tensor by tensor.
   */
  rescaledTensors?: string[];
  /** Agreement and SQNR against FP32, when the calibration was validated. */
  validation?: Record<string, number>;
  /** Extra sections added by later stages (e.g. per-layer selection). */
  [extra: string]: unknown;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The hash of a model with its metadata left out: two calibrations with the same scales,
 * zero points and weights hash alike, whatever their records (time, sample count) say.
 */
export function graphSha256(model: ModelProto): string {
  return sha256(serializeModel({ ...model, metadataProps: [] }));
}

export function writeProfile(model: ModelProto, profile: CalibrationProfile): void {
  setMetadata(model, METADATA_KEY, JSON.stringify(profile));
}

/** The stored calibration, or undefined for a model calibd did not write. */
export function readProfile(model: ModelProto, source = 'model'): CalibrationProfile | undefined {
  const raw = getMetadata(model, METADATA_KEY);
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as CalibrationProfile;
    if (parsed.format !== PROFILE_FORMAT) throw new Error(`unknown format ${String(parsed.format)}`);
    return parsed;
  } catch (err) {
    throw new ModelError(`${source} holds an unreadable calibration record`, {
      value: source,
      hint: 'recalibrate the model with `calibd calibrate`',
      cause: err,
    });
  }
}

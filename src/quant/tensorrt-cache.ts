// A calibration profile written as TensorRT's calibration cache: the text file ONNX
// Runtime's TensorRT execution provider takes ranges from (trt_int8_calibration_table_name
// with trt_int8_use_native_calibration_table=1) to build an INT8 engine from the FP32
// model on a Jetson. Pure: profile in, text out.
//
// What the format is, as its readers define it (the facts this module relies on):
//  - ORT's reader (ReadDynamicRange in onnxruntime/core/providers/tensorrt/
//    tensorrt_execution_provider_utils.h) accepts the file only if the part of the first
//    line before any ':' contains "TRT-". Every later line is cut at its first ':': what
//    comes before is the tensor name, taken as it is; what follows, up to a next ':', goes
//    to strtoul in base 16 (leading blanks skipped, either case) as the bit pattern of a
//    float32 scale, and the tensor gets the range ±scale·127. A name holding ':' would
//    therefore be cut short and the rest of it read as the number, and a line break would
//    split the entry in two: both are refused here, not written.
//  - ORT rebuilds the float from the sign, exponent and mantissa fields as if every
//    pattern were a normal number, so the pattern 0 comes back as 2^-127 rather than 0 and
//    subnormal patterns come back wrong.
//  - Caches TensorRT writes show lowercase hex ("TRT-7103-EntropyCalibration2",
//    "data_0: 4000889d" is the example in ORT's reader); NVIDIA's TAO exporters write the
//    number with Python's hex(), which does not pad. Every scale from 2^-95 up has eight
//    digits either way, so padding only concerns scales no calibration produces; the
//    number is written unpadded, as those exporters do.
//  - TensorRT will not calibrate a tensor that is uniformly zero, and a zero scale in a
//    cache makes TensorRT 8.5's builder fail an assertion (NVIDIA/TensorRT#4446). A range
//    of [0, 0] is written with scale 1, the scale calibd's symmetric Q/DQ gives such a
//    tensor: zero is exact at any scale. So is a range so small that its scale would be
//    below float32's smallest normal number, which ORT's reader would misread.

import { DataError, OptionError } from '../common/index.js';
import { printable } from '../common/errors.js';
import type { CalibrationProfile } from './metadata.js';
import type { Range } from './params.js';

/**
 * The TensorRT version the header names by default: 8.6.1, as TensorRT numbers it
 * (major·1000 + minor·100 + patch). ORT's execution provider ignores the number (it looks
 * for "TRT-" only); TensorRT's own calibrator compares it with the running version and
 * recalibrates on a mismatch, which is what --trt-version is for. 8.6 is the last
 * TensorRT 8 release, the line whose calibrator (implicit quantization) reads such caches
 * without deprecation warnings.
 */
export const DEFAULT_TRT_VERSION = 8601;

/** Formats a calibration can be exported in (`calibd export`, the daemon's `export` command). */
export const EXPORT_FORMATS = ['tensorrt-cache'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The largest value of a symmetric int8 range: TensorRT's scale is amax / 127. */
const INT8_MAX = 127;
/** float32's smallest normal number. */
const MIN_NORMAL_F32 = 2 ** -126;

/** One line of the cache. */
export interface CacheEntry {
  tensor: string;
  /** max(|min|, |max|) of the calibrated range. */
  amax: number;
  /** The float32 scale written (amax / 127, or 1 for a range of zero). */
  scale: number;
  /** The scale's IEEE-754 bit pattern, lowercase hex. */
  hex: string;
}

export interface TensorRTCache {
  text: string;
  entries: CacheEntry[];
  /**
   * Tensors left out: cross-layer equalization rescaled their channels, so their ranges
   * do not hold for the FP32 model the cache is applied to.
   */
  rescaled: string[];
}

/** The IEEE-754 single-precision bit pattern of `x` (after rounding to float32), as an unsigned integer. */
export function float32Bits(x: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x);
  return view.getUint32(0);
}

/** The float32 scale TensorRT's cache holds for a range: max(|min|, |max|) / 127. */
export function cacheScale(range: Range): number {
  const amax = Math.max(Math.abs(range.min), Math.abs(range.max));
  const scale = Math.fround(amax / INT8_MAX);
  return scale >= MIN_NORMAL_F32 ? scale : 1;
}

/** The header line: `TRT-<version>-EntropyCalibration2`. */
export function cacheHeader(trtVersion: number = DEFAULT_TRT_VERSION): string {
  if (!Number.isInteger(trtVersion) || trtVersion <= 0) {
    throw new OptionError(`TensorRT version '${trtVersion}' is not a positive integer`, {
      value: trtVersion,
      hint: `write it as TensorRT numbers its caches, e.g. ${DEFAULT_TRT_VERSION} for 8.6.1`,
    });
  }
  return `TRT-${trtVersion}-EntropyCalibration2`;
}

/** One entry, or a DataError naming the tensor when the format cannot carry it. */
export function cacheEntry(tensor: string, range: Range): CacheEntry {
  if (/[:\r\n]/.test(tensor)) {
    const what = tensor.includes(':') ? "holds ':'" : 'holds a line break';
    throw new DataError(`tensor '${printable(tensor)}' ${what}, which TensorRT's calibration cache cannot carry (its readers cut each line at the first ':')`, {
      value: tensor,
      hint: 'rename the tensor in the FP32 model and calibrate again, or use the INT8 Q/DQ model itself with TensorRT (calibd calibrate --target tensorrt)',
    });
  }
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max)) {
    throw new DataError(`tensor '${printable(tensor)}' has the non-finite range [${range.min}, ${range.max}]`, {
      value: tensor,
      hint: 'calibrate again on finite samples',
    });
  }
  const scale = cacheScale(range);
  return { tensor, amax: Math.max(Math.abs(range.min), Math.abs(range.max)), scale, hex: float32Bits(scale).toString(16) };
}

/**
 * The cache for every calibrated tensor of `profile`, in the profile's order, but those
 * equalization rescaled. Throws before writing anything if one tensor cannot be carried.
 */
export function tensorrtCalibrationCache(profile: CalibrationProfile, options: { trtVersion?: number } = {}): TensorRTCache {
  const header = cacheHeader(options.trtVersion);
  const rescaledSet = new Set(profile.rescaledTensors ?? []);
  const rescaled: string[] = [];
  const entries: CacheEntry[] = [];
  for (const [tensor, t] of Object.entries(profile.tensors)) {
    if (rescaledSet.has(tensor)) rescaled.push(tensor);
    else entries.push(cacheEntry(tensor, t));
  }
  const text = [header, ...entries.map((e) => `${e.tensor}: ${e.hex}`)].join('\n') + '\n';
  return { text, entries, rescaled };
}


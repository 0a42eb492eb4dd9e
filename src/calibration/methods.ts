// The one registry of calibration methods. Each method says what it keeps per tensor (an
// observer) and which of its options a calibration profile records; the config schema,
// the CLI's choices, the collectors and the profile all read their method names from here.
//
//   minmax      extremes of everything seen
//   percentile  histogram, clipped at a percentile
//   entropy     histogram, clipping threshold of least KL divergence (TensorRT's method)
//   mse         histogram, clipping range of least expected squared error
//   datafree    no samples: ranges from BatchNorm statistics and synthetic probes, which
//               are measured with min/max

import { OptionError } from '../common/index.js';
import { entropyRange, mseRange, percentileRange, type Range } from './estimators.js';
import type { Histogram } from './histogram.js';

/** Options every method's observer reads (defaults filled in by the collector). */
export interface ResolvedMethodOptions {
  bins: number;
  percentile: number;
  quantLevels: number;
  levels: number;
  /** Quantization uses a symmetric grid with zero-point 0 (TensorRT); absent: fitted to the range. */
  symmetricGrid?: boolean;
}

/** What a method keeps per tensor: extremes, or a histogram and the estimator run on it. */
export type ObserverKind = { kind: 'extremes' } | { kind: 'histogram'; estimate: (h: Histogram, o: ResolvedMethodOptions) => Range };

interface MethodSpec {
  /** Whether it measures live samples, so the daemon can run it (recalibration.method). */
  readonly measuresSamples: boolean;
  readonly observer: ObserverKind;
  /** The method's own options as a profile records them, in a fixed order. */
  profileOptions(o: ProfileOptionsInput): Record<string, unknown>;
}

/** Option values a profile records (undefined: the documented default). */
export interface ProfileOptionsInput {
  percentile?: number;
  quantLevels?: number;
  bins?: number;
  bnSigmas?: number;
  inputRange?: Range;
  probes?: number;
  inputShapes?: unknown;
}

const EXTREMES: ObserverKind = { kind: 'extremes' };
const bins = (o: ProfileOptionsInput) => ({ bins: o.bins ?? 2048 });

const METHODS = {
  minmax: { measuresSamples: true, observer: EXTREMES, profileOptions: () => ({}) },
  percentile: {
    measuresSamples: true,
    observer: { kind: 'histogram', estimate: (h, o) => percentileRange(h, o.percentile) },
    profileOptions: (o) => ({ percentile: o.percentile ?? 99.999, ...bins(o) }),
  },
  entropy: {
    measuresSamples: true,
    observer: { kind: 'histogram', estimate: (h, o) => entropyRange(h, { quantLevels: o.quantLevels }) },
    profileOptions: (o) => ({ quantLevels: o.quantLevels ?? 128, ...bins(o) }),
  },
  mse: {
    measuresSamples: true,
    observer: { kind: 'histogram', estimate: (h, o) => mseRange(h, { levels: o.levels, symmetric: o.symmetricGrid }) },
    profileOptions: bins,
  },
  datafree: {
    measuresSamples: false,
    observer: EXTREMES,
    // `bins` too: profiles have always recorded it for every method but minmax.
    profileOptions: (o) => ({
      ...bins(o),
      bnSigmas: o.bnSigmas ?? 4,
      inputRange: o.inputRange ?? { min: 0, max: 1 },
      probes: o.probes ?? 64,
      ...(o.inputShapes ? { inputShapes: o.inputShapes } : {}),
    }),
  },
} as const satisfies Record<string, MethodSpec>;

export type CalibrationMethod = keyof typeof METHODS;
/** Methods that estimate ranges from samples: the ones the daemon runs on live data. */
export type RangeMethod = { [M in CalibrationMethod]: (typeof METHODS)[M]['measuresSamples'] extends true ? M : never }[CalibrationMethod];

export const CALIBRATION_METHODS = Object.keys(METHODS) as readonly CalibrationMethod[] as readonly [CalibrationMethod, ...CalibrationMethod[]];
export const RANGE_METHODS = CALIBRATION_METHODS.filter((m) => METHODS[m].measuresSamples) as readonly RangeMethod[] as readonly [RangeMethod, ...RangeMethod[]];

export function isCalibrationMethod(m: unknown): m is CalibrationMethod {
  return typeof m === 'string' && (CALIBRATION_METHODS as readonly string[]).includes(m);
}

export function isRangeMethod(m: unknown): m is RangeMethod {
  return typeof m === 'string' && (RANGE_METHODS as readonly string[]).includes(m);
}

/** The method's name checked, or an OptionError listing the names there are. */
export function checkMethod<M extends string>(method: unknown, names: readonly M[], what = 'calibration method'): M {
  if (typeof method !== 'string' || !(names as readonly string[]).includes(method)) {
    throw new OptionError(`unknown ${what} ${JSON.stringify(method)}`, { value: method, hint: `use one of ${names.join(', ')}` });
  }
  return method as M;
}

/** What `method` keeps per tensor. */
export function observerOf(method: CalibrationMethod): ObserverKind {
  return METHODS[method].observer;
}

/** The range method whose collectors measure for `method` (data-free measures its probes with min/max). */
export function rangeMethodOf(method: CalibrationMethod): RangeMethod {
  return isRangeMethod(method) ? method : 'minmax';
}

/** The method's own options, as its calibration profile records them. */
export function methodProfileOptions(method: CalibrationMethod, o: ProfileOptionsInput): Record<string, unknown> {
  return METHODS[method].profileOptions(o);
}

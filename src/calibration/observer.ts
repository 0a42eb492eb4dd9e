// One observer interface for every calibration method (the statistic a collector keeps
// per tensor), so a collector never asks which kind it holds. Two kinds exist: min/max
// extremes (minmax.ts) and a histogram with the method's range estimator (below).

import type { Range } from './estimators.js';
import type { Histogram } from './histogram.js';

export interface RangeObserver {
  /** Finite values seen (not decayed). */
  readonly samples: number;
  update(data: ArrayLike<number>): void;
  /**
   * A batch's extremes and finite-value count computed elsewhere (inside ORT), with the
   * effect of update() on the batch. Only observers of extremes have it.
   */
  updateExtremes?(lo: number, hi: number, count: number): void;
  /**
   * A subset of a tensor's values (a thinned tap) with the whole tensor's extremes, counted
   * as Histogram.updateSubset does. Only histogram observers have it.
   */
  updateSubset?(data: Float32Array, lo: number, hi: number): void;
  /** Adds another observer's statistics; the collector has checked it is of the same method. */
  merge(other: this): void;
  /** Fades old statistics by `factor` in (0, 1]. */
  decay(factor: number): void;
  range(): Range;
  toJSON(): unknown;
}

/** A histogram of everything seen, and the method's estimator run on it for a range. */
export class HistogramObserver implements RangeObserver {
  constructor(
    readonly histogram: Histogram,
    private readonly estimate: (h: Histogram) => Range,
  ) {}

  get samples(): number {
    return this.histogram.seen;
  }
  update(data: ArrayLike<number>): void {
    this.histogram.update(data);
  }
  updateSubset(data: Float32Array, lo: number, hi: number): void {
    this.histogram.updateSubset(data, lo, hi);
  }
  /** Histograms merge exactly; the estimator options of `this` apply to the merged data. */
  merge(other: HistogramObserver): void {
    this.histogram.merge(other.histogram);
  }
  decay(factor: number): void {
    this.histogram.decay(factor);
  }
  range(): Range {
    return this.estimate(this.histogram);
  }
  toJSON(): unknown {
    return this.histogram.toJSON();
  }
}

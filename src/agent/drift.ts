// Input drift: the Population Stability Index between the distribution of input values
// the active calibration was built on (the reference) and what the device sees now.
// PSI = Σ (p_i − q_i) · ln(p_i / q_i) over fixed bins; about 0.1 is a noticeable shift and
// 0.25 a large one. The recent window forgets geometrically, so the score follows the
// stream. Pure math on typed arrays.

import { OptionError } from '../common/index.js';

export interface DriftOptions {
  /** Bounds of the input contract; values outside fall into two edge bins. */
  min: number;
  max: number;
  /** Interior bins (default 20). */
  bins?: number;
  /** Weight kept per observed sample in the recent window (default 0.99). */
  forgetting?: number;
}

/** Probabilities are floored so an empty bin does not make the index infinite. */
const FLOOR = 1e-4;

export function psi(reference: ArrayLike<number>, recent: ArrayLike<number>): number {
  if (reference.length !== recent.length) {
    throw new OptionError('PSI needs histograms with the same bins', { value: [reference.length, recent.length] });
  }
  const sr = sum(reference);
  const sq = sum(recent);
  if (sr === 0 || sq === 0) return 0;
  let total = 0;
  for (let i = 0; i < reference.length; i++) {
    const p = Math.max(FLOOR, reference[i] / sr);
    const q = Math.max(FLOOR, recent[i] / sq);
    total += (q - p) * Math.log(q / p);
  }
  return total;
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

export class DriftMonitor {
  private readonly bins: number;
  private readonly forgetting: number;
  private reference: Float64Array;
  private recent: Float64Array;
  private samples = 0;

  constructor(private readonly opts: DriftOptions) {
    this.bins = opts.bins ?? 20;
    this.forgetting = opts.forgetting ?? 0.99;
    if (!(opts.max > opts.min)) throw new OptionError('drift range needs max > min', { value: opts });
    this.reference = new Float64Array(this.bins + 2);
    this.recent = new Float64Array(this.bins + 2);
  }

  /** Bin histogram of one sample's values, normalised to sum 1. */
  histogram(values: ArrayLike<number>): Float64Array {
    const h = new Float64Array(this.bins + 2);
    const { min, max } = this.opts;
    const scale = this.bins / (max - min);
    let n = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) continue;
      const k = v < min ? 0 : v > max ? this.bins + 1 : 1 + Math.min(this.bins - 1, Math.floor((v - min) * scale));
      h[k]++;
      n++;
    }
    if (n > 0) for (let k = 0; k < h.length; k++) h[k] /= n;
    return h;
  }

  /** Adds one sampled input to the recent window (and to the reference while it is empty). */
  observe(values: ArrayLike<number>): void {
    const h = this.histogram(values);
    for (let k = 0; k < h.length; k++) this.recent[k] = this.recent[k] * this.forgetting + h[k];
    this.samples++;
  }

  /** The current window becomes the reference: called when a calibration is activated. */
  rebase(): void {
    this.reference = Float64Array.from(this.recent);
  }

  get hasReference(): boolean {
    return sum(this.reference) > 0;
  }

  get observed(): number {
    return this.samples;
  }

  score(): number {
    return this.hasReference ? psi(this.reference, this.recent) : 0;
  }
}

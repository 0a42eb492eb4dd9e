// Task metrics: how close an INT8 output is to its FP32 reference, measured the way the
// model's task reads it. One definition serves the daemon's gate, `calibrate --auto` and
// `calibd eval`.
//
//   top1        classifiers [N, C]: share of rows whose argmax agrees;
//   top1-steps  sequences [N, T, C] (CTC recognisers): the same, per time step;
//   sqnr        any output: 10·log10(signal energy / error energy), dB;
//   mask-iou:T  probability maps: IoU of the two maps thresholded at T.
//
// Every metric is "higher is better". Pure math on typed arrays.

import { OptionError } from '../common/index.js';

/** Running SQNR: energy of the reference and of the difference. */
export class SqnrAccumulator {
  signal = 0;
  noise = 0;
  add(ref: ArrayLike<number>, test: ArrayLike<number>): void {
    for (let i = 0; i < ref.length; i++) {
      const d = ref[i] - test[i];
      this.signal += ref[i] * ref[i];
      this.noise += d * d;
    }
  }
  get db(): number {
    if (this.noise === 0) return Infinity;
    if (this.signal === 0) return -Infinity;
    return 10 * Math.log10(this.signal / this.noise);
  }
}

/** argmax along the last axis, one per row. */
export function argmaxRows(data: ArrayLike<number>, rowLength: number): Int32Array {
  const rows = Math.floor(data.length / rowLength);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestV = -Infinity;
    for (let c = 0; c < rowLength; c++) {
      const v = data[r * rowLength + c];
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

export const METRIC_KINDS = ['top1', 'top1-steps', 'sqnr', 'mask-iou'] as const;
export type MetricKind = (typeof METRIC_KINDS)[number];

export interface TaskMetric {
  kind: MetricKind;
  /** Threshold of mask-iou. */
  threshold?: number;
  /** Canonical spelling, e.g. 'mask-iou:0.3'. */
  name: string;
}

/** Least value a candidate must reach with nothing to beat, and `--auto`'s default budget. */
export interface MetricBounds {
  floor: number;
  budget: number;
}

/** Per-kind defaults: a floor the daemon's gate applies, a budget `--auto` keeps. */
export const METRIC_BOUNDS: Record<MetricKind, MetricBounds> = {
  top1: { floor: 0.97, budget: 0.99 },
  'top1-steps': { floor: 0.97, budget: 0.99 },
  sqnr: { floor: 20, budget: 30 },
  'mask-iou': { floor: 0.95, budget: 0.98 },
};

export function parseMetric(text: string): TaskMetric {
  const [kind, arg, extra] = text.trim().split(':');
  const bad = (why: string): never => {
    throw new OptionError(`metric '${text}' ${why}`, { value: text, hint: 'use top1, top1-steps, sqnr or mask-iou:T with T in (0, 1), e.g. mask-iou:0.3' });
  };
  if (extra !== undefined) bad('has too many parts');
  if (!(METRIC_KINDS as readonly string[]).includes(kind)) bad('is unknown');
  if (kind === 'mask-iou') {
    const t = Number(arg);
    if (arg === undefined || arg === '' || !(t > 0 && t < 1)) bad('needs a threshold in (0, 1)');
    return { kind, threshold: t, name: `mask-iou:${t}` };
  }
  if (arg !== undefined) bad('takes no argument');
  return { kind: kind as MetricKind, name: kind };
}

/**
 * The metric an output's shape and values suggest: [N, C] top1, [N, T, C] top1-steps,
 * [N, 1, H, W] with values in [0, 1] mask-iou:0.3, anything else sqnr.
 */
export function inferMetric(dims: readonly number[], values: ArrayLike<number>): TaskMetric {
  if (dims.length === 2 && dims[1] > 1) return parseMetric('top1');
  if (dims.length === 3 && dims[2] > 1) return parseMetric('top1-steps');
  if (dims.length === 4 && dims[1] === 1) {
    let inUnit = true;
    for (let i = 0; i < values.length && inUnit; i++) inUnit = values[i] >= 0 && values[i] <= 1;
    if (inUnit) return parseMetric('mask-iou:0.3');
  }
  return parseMetric('sqnr');
}

/** Accumulates one metric over batches of (reference, candidate) outputs. */
export class MetricAccumulator {
  private agree = 0;
  private rows = 0;
  private inter = 0;
  private union = 0;
  private readonly sqnr = new SqnrAccumulator();

  constructor(readonly metric: TaskMetric) {}

  /** `dims` is the output's shape; its last axis holds the classes for top1 metrics. */
  add(ref: ArrayLike<number>, test: ArrayLike<number>, dims: readonly number[]): void {
    this.sqnr.add(ref, test);
    if (this.metric.kind === 'top1' || this.metric.kind === 'top1-steps') {
      const width = Number(dims[dims.length - 1] ?? 1);
      const a = argmaxRows(ref, width);
      const b = argmaxRows(test, width);
      for (let r = 0; r < a.length; r++) if (a[r] === b[r]) this.agree++;
      this.rows += a.length;
    } else if (this.metric.kind === 'mask-iou') {
      const t = this.metric.threshold!;
      for (let i = 0; i < ref.length; i++) {
        const p = ref[i] > t;
        const q = test[i] > t;
        if (p && q) this.inter++;
        if (p || q) this.union++;
      }
    }
  }

  /** The metric's value; two empty masks agree perfectly (IoU 1). */
  get value(): number {
    switch (this.metric.kind) {
      case 'top1':
      case 'top1-steps':
        return this.rows ? this.agree / this.rows : 0;
      case 'mask-iou':
        return this.union ? this.inter / this.union : 1;
      case 'sqnr':
        return this.sqnr.db;
    }
  }

  get sqnrDb(): number {
    return this.sqnr.db;
  }
}

/** How close an INT8 model's output is to FP32's: the figures every check reports. */
export interface Figures {
  /** Top-1 agreement with FP32, 0..1 (argmax over the output's last axis). */
  agreement: number;
  /** Output SQNR against FP32, dB. */
  sqnrDb: number;
  /** The task metric's value. */
  value: number;
}

/** Figures of one output, accumulated batch by batch: top-1 agreement and SQNR always, and the task metric. */
export class OutputScore {
  private readonly top1 = new MetricAccumulator(parseMetric('top1'));
  private readonly task: MetricAccumulator;

  constructor(metric: TaskMetric) {
    this.task = metric.kind === 'top1' ? this.top1 : new MetricAccumulator(metric);
  }

  add(ref: ArrayLike<number>, test: ArrayLike<number>, dims: readonly number[]): void {
    this.top1.add(ref, test, dims);
    if (this.task !== this.top1) this.task.add(ref, test, dims);
  }

  figures(): Figures {
    return { agreement: this.top1.value, sqnrDb: this.top1.sqnrDb, value: this.task.value };
  }
}

/**
 * An SQNR as people read it, the one spelling everywhere: one decimal and dB, and `exact`
 * for identical outputs (no noise: an infinite ratio that would print as "Infinity dB").
 */
export function formatDb(db: number): string {
  return Number.isFinite(db) ? `${db.toFixed(1)} dB` : db > 0 ? 'exact' : '-inf dB';
}

/** A metric value as people read it: a percentage, or dB. */
export function formatMetric(metric: TaskMetric, value: number): string {
  if (metric.kind === 'sqnr') return formatDb(value);
  if (metric.kind === 'mask-iou') return value.toFixed(4);
  return `${(100 * value).toFixed(2)}%`;
}

// The validation gate: a candidate calibration replaces the active one only when it is at
// least as good against FP32 on the held-out samples, judged on the model's task metric
// (top-1 agreement for a classifier, mask IoU for a detector's map, …). Pure decision.

import { formatDb, formatMetric, parseMetric, type Figures as OutputFigures, type TaskMetric } from '../calibration/index.js';

/**
 * calibration's Figures on the held-out samples, with how many there were and the task
 * metric's name (e.g. 'mask-iou:0.3'). `value` (worst output) may be absent in older
 * callers: the agreement then stands for it.
 */
export type Figures = Omit<OutputFigures, 'value'> & Partial<Pick<OutputFigures, 'value'>> & { samples: number; metric?: string };

export interface GateDecision {
  accept: boolean;
  reason: string;
}

const TOP1 = parseMetric('top1');

/**
 * `margin`: what the candidate may lose, in points (0–100) of a fraction metric or in dB
 * for sqnr. When there is nothing to beat (serving FP32, or the data-free bootstrap), the
 * candidate must clear `floor` alone. With no margin, ties on the metric go to the higher
 * output SQNR; a margin says the caller accepts that much loss (a fleet calibration that
 * also covers other devices' scenes), so anything within it is accepted.
 */
export function gate(candidate: Figures, current: Figures | null, margin = 0, floor = 0.97, metric: TaskMetric = TOP1): GateDecision {
  if (candidate.samples === 0) return { accept: false, reason: 'no validation samples' };
  const value = (f: Figures) => f.value ?? f.agreement;
  const show = (v: number) => formatMetric(metric, v);
  const name = metric.name;
  const c = value(candidate);
  if (!current) {
    return c >= floor
      ? { accept: true, reason: `${name} ${show(c)} clears the ${show(floor)} floor (nothing to beat)` }
      : { accept: false, reason: `${name} ${show(c)} is under the ${show(floor)} floor` };
  }
  const a = value(current);
  const perPoint = metric.kind === 'sqnr' ? 1 : 100;
  const lost = (a - c) * perPoint;
  if (lost > margin + 1e-9) {
    return { accept: false, reason: `${name} ${show(c)} vs ${show(a)} active: loses ${lost.toFixed(2)} ${metric.kind === 'sqnr' ? 'dB' : 'points'} (margin ${margin})` };
  }
  if (c > a) return { accept: true, reason: `${name} ${show(c)} beats ${show(a)}` };
  if (metric.kind === 'sqnr') return { accept: true, reason: `${name} ${show(c)} within ${margin} dB of ${show(a)} active` };
  if (margin > 0) return { accept: true, reason: `${name} ${show(c)} within ${margin} points of ${show(a)} active (SQNR ${formatDb(candidate.sqnrDb)}, active ${formatDb(current.sqnrDb)})` };
  if (candidate.sqnrDb >= current.sqnrDb) {
    return { accept: true, reason: `${name} ${show(c)} (active ${show(a)}), SQNR ${formatDb(candidate.sqnrDb)} ≥ ${formatDb(current.sqnrDb)}` };
  }
  return { accept: false, reason: `SQNR ${formatDb(candidate.sqnrDb)} < ${formatDb(current.sqnrDb)} active at equal ${name}` };
}

// When the agent recalibrates on its own: a pure policy over plain figures, so it can be
// tested without a daemon. Commands and cron trigger directly; this decides the rest.

/**
 * What started a recalibration; stored in each calibration event's `trigger`. Events written
 * before this name existed say 'schedule' for 'every-n-inferences'; nothing reads it back, so
 * the old spelling is not accepted anywhere.
 */
export type Trigger = 'command' | 'every-n-inferences' | 'cron' | 'drift' | 'first-data' | 'fleet';

/** recalibration.everyInferences: due once that many inferences passed since the last such trigger. */
export function everyNInferencesDue(s: { inferences: number; lastTriggeredAt: number; running: boolean }, everyInferences: number): boolean {
  return everyInferences > 0 && !s.running && s.inferences - s.lastTriggeredAt >= everyInferences;
}

export interface AfterSampleFigures {
  /** Samples learned (not held out) since the last recalibration ended. */
  learnedSinceCalibration: number;
  /** Rows in the buffer, those still queued for the next flush included. */
  rows: number;
  running: boolean;
  /** Nothing calibrated from live data serves yet (FP32, or the data-free bootstrap). */
  bootstrap: boolean;
  driftScore: number;
}

/**
 * After a stored sample: the first calibration from live data once minSamples are buffered,
 * later a drift-triggered one when the inputs moved past driftThreshold. Either waits until
 * enough new samples were learned, so one burst does not trigger twice.
 */
export function afterSampleTrigger(f: AfterSampleFigures, r: { minSamples: number; driftThreshold: number }): 'first-data' | 'drift' | null {
  if (f.running) return null;
  if (f.learnedSinceCalibration < Math.max(10, Math.floor(r.minSamples / 2))) return null;
  // Rows still queued for the next flush count too: a short burst of requests would
  // otherwise never reach minSamples before the stream stops.
  if (f.rows < r.minSamples) return null;
  if (f.bootstrap) return 'first-data';
  return f.driftScore > r.driftThreshold ? 'drift' : null;
}

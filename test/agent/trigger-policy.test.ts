// The trigger policy with plain figures: when the agent recalibrates on its own.
import { describe, expect, it } from 'vitest';
import { afterSampleTrigger, everyNInferencesDue } from '../../src/agent/index.js';

describe('every N inferences', () => {
  it('is due once N inferences passed since the last trigger, and never while a job runs', () => {
    expect(everyNInferencesDue({ inferences: 99, lastTriggeredAt: 0, running: false }, 100)).toBe(false);
    expect(everyNInferencesDue({ inferences: 100, lastTriggeredAt: 0, running: false }, 100)).toBe(true);
    expect(everyNInferencesDue({ inferences: 150, lastTriggeredAt: 100, running: false }, 100)).toBe(false);
    expect(everyNInferencesDue({ inferences: 200, lastTriggeredAt: 100, running: false }, 100)).toBe(true);
    expect(everyNInferencesDue({ inferences: 200, lastTriggeredAt: 0, running: true }, 100)).toBe(false);
  });

  it('is off at 0', () => {
    expect(everyNInferencesDue({ inferences: 1e6, lastTriggeredAt: 0, running: false }, 0)).toBe(false);
  });
});

describe('after a stored sample', () => {
  const r = { minSamples: 100, driftThreshold: 0.2 };
  const ready = { learnedSinceCalibration: 50, rows: 100, running: false, bootstrap: false, driftScore: 0 };

  it('makes the first calibration from live data once minSamples are buffered', () => {
    expect(afterSampleTrigger({ ...ready, bootstrap: true }, r)).toBe('first-data');
    expect(afterSampleTrigger({ ...ready, bootstrap: true, rows: 99 }, r)).toBeNull();
  });

  it('recalibrates on drift beyond the threshold, not at it', () => {
    expect(afterSampleTrigger({ ...ready, driftScore: 0.21 }, r)).toBe('drift');
    expect(afterSampleTrigger({ ...ready, driftScore: 0.2 }, r)).toBeNull();
  });

  it('waits for half of minSamples newly learned (at least 10), so one burst does not trigger twice', () => {
    expect(afterSampleTrigger({ ...ready, driftScore: 1, learnedSinceCalibration: 49 }, r)).toBeNull();
    const small = { minSamples: 4, driftThreshold: 0.2 };
    expect(afterSampleTrigger({ ...ready, bootstrap: true, learnedSinceCalibration: 9 }, small)).toBeNull();
    expect(afterSampleTrigger({ ...ready, bootstrap: true, learnedSinceCalibration: 10 }, small)).toBe('first-data');
  });

  it('never triggers while a recalibration runs', () => {
    expect(afterSampleTrigger({ ...ready, running: true, bootstrap: true, driftScore: 1 }, r)).toBeNull();
  });
});

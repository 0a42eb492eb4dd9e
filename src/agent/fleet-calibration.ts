// What a device checks before it takes a fleet calibration: made for the model it serves,
// from statistics of the same prepared graph. Anything else is refused before any work.

import { CalibdError } from '../common/index.js';
import type { FleetCalibration } from '../calibration/index.js';

export function checkFleetCalibration(c: FleetCalibration, fp32Sha256: string, graph: string): void {
  if (c.sourceModelSha256 !== fp32Sha256) {
    throw new CalibdError('model-mismatch', `the fleet calibration is for model sha256 ${c.sourceModelSha256.slice(0, 12)}…; this device serves ${fp32Sha256.slice(0, 12)}…`, {
      value: c.sourceModelSha256,
      hint: 'calibrate each model with the statistics of the devices serving it',
    });
  }
  if (c.graph !== graph) {
    throw new CalibdError('model-mismatch', 'the fleet calibration was measured on another prepared graph (recalibration.equalization or excluded nodes differ)', {
      value: c.graph,
      hint: 'give every device of the fleet the same recalibration settings',
    });
  }
}

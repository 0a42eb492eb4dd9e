// What the very first start serves, before any version exists: FP32, the fleet's
// calibration of this model (firstBoot: fleet), or a data-free calibration, recorded as the
// first version.

import { errorMessage } from '../common/index.js';
import { fleetProfile, hasDynamicInput, parseFleetCalibration } from '../calibration/index.js';
import type { CalibrationProfile } from '../quant/index.js';
import { checkFleetCalibration } from './fleet-calibration.js';
import type { CalibdConfig } from '../config/index.js';
import { parseModel } from '../onnx/index.js';
import type { Logger } from '../common/index.js';
import type { EventSink } from './events.js';
import { errorCode, type ModelStore } from './model-store.js';
import type { CalibrationWorker } from './worker-client.js';

/**
 * The model the first start serves: FP32 when asked for (or when a dynamic model has no
 * shapes to probe with), else a data-free calibration recorded as version 1.
 */
export interface FirstBootParts {
  config: CalibdConfig;
  fp32Bytes: Uint8Array;
  fp32Sha256: string;
  /** The worker's prepared-graph key (a fleet calibration must name it). */
  graph: string;
  worker: CalibrationWorker;
  store: ModelStore;
  events: EventSink;
  log: Logger;
  /** Reads the fleet calibration retained for this model (fleet/retained-calibration.ts); null: none. */
  readFleetCalibration?: (fp32Sha256: string) => Promise<unknown>;
}

export async function firstBoot(p: FirstBootParts): Promise<Uint8Array> {
  const { config, events } = p;
  if (config.firstBoot === 'fp32') {
    events.emit('first-boot', { serving: 'fp32' });
    return p.fp32Bytes;
  }
  if (config.firstBoot === 'fleet') {
    const model = await fleetFirstBoot(p);
    if (model) return model;
  }
  // Probes need a shape; without one a dynamic model serves FP32 until live samples
  // give the first calibration its data.
  if (!config.inputShapes && hasDynamicInput(parseModel(p.fp32Bytes, 'FP32 model'))) {
    p.log.info({ firstBoot: 'datafree' }, 'the model has dynamic input dimensions and no inputShapes are configured: serving FP32 until the first calibration from live samples');
    events.emit('first-boot', { serving: 'fp32', reason: 'dynamic input shape' });
    return p.fp32Bytes;
  }
  const { model, profile } = await p.worker.call('datafree', {});
  return record(p, model, profile, 'data-free calibration', { method: 'datafree' }) ?? p.fp32Bytes;
}

/** Records `model` as version 1 and serves it; null (FP32 served) when it cannot be stored. */
function record(p: FirstBootParts, model: Uint8Array, profile: CalibrationProfile, what: string, said: Record<string, unknown>): Uint8Array | null {
  let version: number;
  try {
    version = p.store.recordActive(model, profile, { reason: `first boot: ${what}` }, null);
  } catch (err) {
    // Serving FP32 is consistent with an empty version table; the next calibration retries.
    p.events.emit('error', { message: `first boot could not record its ${what}: ${errorMessage(err)}`, code: errorCode(err) });
    p.events.emit('first-boot', { serving: 'fp32', reason: `the ${what} could not be stored` });
    return null;
  }
  p.store.served(version);
  p.events.emit('first-boot', { serving: 'int8', version, ...said });
  return model;
}

/**
 * The fleet calibration retained for this model, built here: statistics of devices that
 * already serve it, so a new device starts from real data rather than from probes. Null
 * (and said why) when there is none or it does not fit; the caller goes on to data-free.
 */
async function fleetFirstBoot(p: FirstBootParts): Promise<Uint8Array | null> {
  try {
    const doc = await p.readFleetCalibration?.(p.fp32Sha256);
    if (!doc) {
      p.log.info({ firstBoot: 'fleet' }, 'no fleet calibration for this model: falling back to a data-free calibration');
      return null;
    }
    const { calibration } = parseFleetCalibration(doc);
    checkFleetCalibration(calibration, p.fp32Sha256, p.graph);
    const { model, profile } = await p.worker.call('build', { ranges: calibration.ranges, extra: fleetProfile(calibration) });
    return record(p, model, profile, `fleet calibration of ${calibration.devices.length} devices`, { method: calibration.method, fleet: calibration.devices.length });
  } catch (err) {
    p.log.warn({ code: errorCode(err) }, `the fleet calibration cannot be used (${errorMessage(err)}): falling back to a data-free calibration`);
    return null;
  }
}

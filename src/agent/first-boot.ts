// What the very first start serves, before any version exists: FP32, or a data-free
// calibration recorded as the first version.

import { errorMessage } from '../common/index.js';
import { hasDynamicInput } from '../calibration/index.js';
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
export async function firstBoot(p: { config: CalibdConfig; fp32Bytes: Uint8Array; worker: CalibrationWorker; store: ModelStore; events: EventSink; log: Logger }): Promise<Uint8Array> {
  const { config, events } = p;
  if (config.firstBoot === 'fp32') {
    events.emit('first-boot', { serving: 'fp32' });
    return p.fp32Bytes;
  }
  // Probes need a shape; without one a dynamic model serves FP32 until live samples
  // give the first calibration its data.
  if (!config.inputShapes && hasDynamicInput(parseModel(p.fp32Bytes, 'FP32 model'))) {
    p.log.info({ firstBoot: 'datafree' }, 'the model has dynamic input dimensions and no inputShapes are configured: serving FP32 until the first calibration from live samples');
    events.emit('first-boot', { serving: 'fp32', reason: 'dynamic input shape' });
    return p.fp32Bytes;
  }
  const { model, profile } = await p.worker.call('datafree', {});
  let version: number;
  try {
    version = p.store.recordActive(model, profile, { reason: 'first boot: data-free calibration' }, null);
  } catch (err) {
    // Serving FP32 is consistent with an empty version table; the next calibration retries.
    events.emit('error', { message: `first boot could not record its data-free calibration: ${errorMessage(err)}`, code: errorCode(err) });
    events.emit('first-boot', { serving: 'fp32', reason: 'the data-free calibration could not be stored' });
    return p.fp32Bytes;
  }
  p.store.served(version);
  events.emit('first-boot', { serving: 'int8', version, method: 'datafree' });
  return model;
}

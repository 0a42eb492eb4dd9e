// The calibration worker thread. It owns the FP32 activation tap and the decayed
// statistics; the daemon's event loop only forwards samples and receives finished models,
// so histogram updates, range searches and candidate validation never delay a request.
// Requests are handled strictly one at a time, in arrival order.

import { parentPort } from 'node:worker_threads';
import { Calibrator, calibrate, compareModels, perSampleShapes, argmaxRows, arraySource, parseMetric, selectInt8Nodes, type Batch, type CalibrationMethod } from '../calibration/index.js';
import { CalibdError } from '../common/index.js';
import { parseModel, serializeModel, type ModelProto } from '../onnx/index.js';
import type { RequestMessage, RequestType, Requests, ResponseMessage, WireSample, WorkerInit } from './worker-protocol.js';

let init: WorkerInit | null = null;
let fp32: ModelProto | null = null;
let calibrator: Calibrator | null = null;
let method: CalibrationMethod = 'percentile';

function need<T>(v: T | null, what: string): T {
  if (v === null) throw new CalibdError('worker', `calibration worker used before ${what}`);
  return v;
}

function toBatch(samples: WireSample[]): Batch {
  // Samples of one shape are stacked into one batch; the daemon sends them that way.
  const names = Object.keys(samples[0]);
  const batch: Batch = {};
  for (const name of names) {
    const per = samples[0][name].data.length;
    const data = new Float32Array(per * samples.length);
    samples.forEach((s, i) => data.set(s[name].data, i * per));
    batch[name] = { data, dims: [samples.length, ...samples[0][name].shape.slice(1)] };
  }
  return batch;
}

async function newCalibrator(m: CalibrationMethod): Promise<Calibrator> {
  const i = need(init, 'init');
  await calibrator?.release();
  method = m;
  // Data-free is a bootstrap, not a statistic: live samples use the percentile method.
  const live: CalibrationMethod = m === 'datafree' ? 'percentile' : m;
  return Calibrator.create(need(fp32, 'init'), {
    method: live,
    perChannel: i.perChannel,
    activationType: i.activationType,
    biasCorrection: i.biasCorrection,
    equalization: i.equalization,
    ...(i.maxMemoryMB ? { maxMemoryMB: i.maxMemoryMB } : {}),
    threads: i.threads,
  });
}

const handlers: { [T in RequestType]: (p: Requests[T]['req']) => Promise<Requests[T]['res']> } = {
  async init(p) {
    init = p;
    fp32 = parseModel(p.fp32, 'FP32 model');
    calibrator = await newCalibrator(p.method);
    return { tensors: calibrator.tensors, graph: calibrator.graphKey };
  },

  async observe({ samples, learn }) {
    const c = need(calibrator, 'init');
    const predictions: (number | null)[] = [];
    // One tap run per sample keeps learning and decay in arrival order.
    for (let i = 0; i < samples.length; i++) {
      const batch = toBatch([samples[i]]);
      let outputs;
      if (learn[i]) {
        c.decay(need(init, 'init').forgetting);
        outputs = await c.observe(batch);
      } else {
        outputs = await c.predict(batch);
      }
      const first = outputs ? [...outputs.values()][0] : undefined;
      if (!first) {
        predictions.push(null);
        continue;
      }
      const width = first.dims[first.dims.length - 1] ?? 1;
      predictions.push(argmaxRows(first.data as Float32Array, width)[0] ?? null);
    }
    return { predictions };
  },

  async restart({ method: m }) {
    calibrator = await newCalibrator(m ?? method);
    return { method };
  },

  async build({ exclude, selection, ranges, extra }) {
    const c = need(calibrator, 'init');
    const given = ranges ? new Map(ranges.map(([t, min, max]) => [t, { min, max }])) : c.ranges();
    const { model, profile } = c.build(given, { ...(selection ? { selection } : {}), ...(extra ?? {}) }, exclude ?? []);
    return { model: serializeModel(model), profile };
  },

  async stats({ device }) {
    return need(calibrator, 'init').statisticsBundle([device]);
  },

  async select({ samples, threads }) {
    const c = need(calibrator, 'init');
    return selectInt8Nodes(c.selectionInput(), arraySource(toBatch(samples)), { threads });
  },

  async datafree() {
    const i = need(init, 'init');
    const { model, profile } = await calibrate(need(fp32, 'init'), null, {
      method: 'datafree',
      perChannel: i.perChannel,
      activationType: i.activationType,
      biasCorrection: i.biasCorrection === 'datafree' ? 'datafree' : 'none',
      inputRange: i.inputRange,
      ...(i.inputShapes ? { inputShapes: perSampleShapes(i.inputShapes) } : {}),
      threads: i.threads,
    });
    return { model: serializeModel(model), profile };
  },

  async compare({ candidate, current, samples, metric }) {
    const reference = need(fp32, 'init');
    const source = arraySource(toBatch(samples));
    const task = metric ? parseMetric(metric) : undefined;
    const figures = async (bytes: Uint8Array) => {
      // Small batches: a batch's FP32 and INT8 intermediates are what the daemon's RSS peaks on.
      const r = await compareModels(reference, parseModel(bytes, 'calibration'), source, { batchSize: 4, metric: task });
      return { agreement: r.agreement, sqnrDb: r.sqnrDb, samples: r.samples, value: r.value, metric: r.metric.name };
    };
    return { candidate: await figures(candidate), current: current ? await figures(current) : null };
  },
};

let queue: Promise<void> = Promise.resolve();

parentPort?.on('message', (msg: RequestMessage) => {
  queue = queue.then(async () => {
    let reply: ResponseMessage;
    try {
      const handler = handlers[msg.type] as (p: unknown) => Promise<unknown>;
      const result = await handler(msg.payload);
      reply = { id: msg.id, ok: true, result };
    } catch (err) {
      const e = err instanceof CalibdError ? err : null;
      reply = {
        id: msg.id,
        ok: false,
        error: { message: err instanceof Error ? err.message : String(err), code: e?.code ?? 'worker', hint: e?.hint ?? '' },
      };
    }
    const transfer = reply.ok && reply.result && typeof reply.result === 'object' && 'model' in reply.result ? [(reply.result as { model: Uint8Array }).model.buffer as ArrayBuffer] : [];
    parentPort!.postMessage(reply, transfer);
  });
});

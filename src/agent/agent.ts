// The daemon's composition root: start-up builds the parts, each with one job, and the
// agent wires them together and implements the API's and the fleet's commands.
//
//   request → onInference (sync, O(1)) ─ 1 in k ─► worker tap (FP32 prediction, decayed
//   statistics) → buffer row (sampler.ts).  Every N inferences · cron · drift · first data
//   (trigger-policy.ts) · command → the recalibration pipeline (pipeline.ts): candidate →
//   validated → gate → recorded (model-store.ts) → hot-swapped.  Everything said goes
//   through one EventSink (events.ts); status.ts reports.
//
// The parts talk through narrow interfaces: the store and the pipeline report through the
// EventSink, the trigger policy is pure, and only this file knows them all.

import { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import { CalibdError, errorMessage, realFs, type FsOps } from '../common/index.js';
import { EventLog, ProfileStore, SampleBuffer, openStateDb, type StateDb } from '../state/index.js';
import { applyRuntimeChange, inputContract, type CalibdConfig } from '../config/index.js';
import { isRangeMethod, type RangeMethod } from '../calibration/methods.js';
import { readModel, serializeModel } from '../onnx/index.js';
import { sha256, tensorrtCalibrationCache, type CalibrationProfile } from '../quant/index.js';
import { InferenceEngine } from '../runtime/index.js';
import type { ApplyRequest, ExportRequest, RecalibrateRequest, RollbackRequest } from './commands.js';
import { parseFleetCalibration, type StatisticsBundle } from '../calibration/index.js';
import { checkFleetCalibration } from './fleet-calibration.js';
import { DriftMonitor } from './drift.js';
import { AgentEvents, type AgentEvent } from './events.js';
import type { Logger } from '../common/index.js';
import { firstBoot, type FirstBootParts } from './first-boot.js';
import { ModelStore, errorCode } from './model-store.js';
import { RecalibrationPipeline, type AgentCounters, type RecalibrationResult } from './pipeline.js';
import { RecalibrationCron } from './recalibration-cron.js';
import { MAX_BACKLOG, isHoldout, isSampled, sampleOf } from './sampler.js';
import { calibrationList, statusReport } from './status.js';
import { afterSampleTrigger, everyNInferencesDue, type Trigger } from './trigger-policy.js';
import { CalibrationWorker } from './worker-client.js';
import type { WireSample } from './worker-protocol.js';

export type { AgentEvent } from './events.js';
export type { AgentCounters, RecalibrationResult } from './pipeline.js';

/**
 * The seams of the agent's state I/O: the file operations behind model files, and a hook
 * run before each SQLite commit. Tests pass faulty ones to inject disk errors.
 */
export interface StateIo {
  fs?: FsOps;
  beforeCommit?: (what: string) => void;
}

/** Everything start() built before the agent could exist. */
interface Parts {
  config: CalibdConfig;
  state: StateDb;
  events: AgentEvents;
  eventLog: EventLog;
  profiles: ProfileStore;
  store: ModelStore;
  worker: CalibrationWorker;
  engine: InferenceEngine;
  method: RangeMethod;
  fp32Sha256: string;
  /** The key of the worker's prepared graph: fleet calibrations must name it. */
  graph: string;
  fs: FsOps;
  log: Logger;
}

export class CalibrationAgent extends EventEmitter {
  readonly config: CalibdConfig;
  readonly buffer: SampleBuffer;
  readonly profiles: ProfileStore;
  /** The persisted event log (every event but transient ones). */
  readonly events: EventLog;
  readonly drift: DriftMonitor;
  readonly engine: InferenceEngine;
  private readonly state: StateDb;
  private readonly sink: AgentEvents;
  private readonly store: ModelStore;
  private readonly worker: CalibrationWorker;
  private readonly pipeline: RecalibrationPipeline;
  private readonly cron: RecalibrationCron;
  private readonly log: Logger;
  private readonly fp32Sha256: string;
  private readonly graph: string;
  private readonly counters: AgentCounters = { inferences: 0, sampled: 0, dropped: 0, holdout: 0, recalibrations: 0, accepted: 0, rejected: 0, unchanged: 0, rollbacks: 0, refused: 0, errors: 0 };
  /** Inference count at the last every-N-inferences trigger. */
  private lastEveryNAt = 0;
  private closed = false;
  /** Sampled inputs on their way through the worker to the buffer; close() lets them land. */
  private readonly ingesting = new Set<Promise<void>>();
  private readonly startedAt = Date.now();
  /** When a failed sample write was last reported as an event (they repeat every flush on a full disk). */
  private sampleWriteReportedAt = -Infinity;

  private constructor(p: Parts) {
    super();
    this.config = p.config;
    this.state = p.state;
    this.sink = p.events;
    this.events = p.eventLog;
    this.profiles = p.profiles;
    this.store = p.store;
    this.worker = p.worker;
    this.engine = p.engine;
    this.log = p.log;
    this.fp32Sha256 = p.fp32Sha256;
    this.graph = p.graph;
    p.events.listen((e) => this.emit('event', e));
    const s = p.config.sampling;
    this.buffer = new SampleBuffer(p.state, {
      maxRows: s.maxRows,
      maxBytes: s.maxBytes,
      maxAgeMs: s.maxAgeHours * 3600_000,
      onFlushError: (err, dropped) => this.onSampleWriteFailed(err, dropped),
    });
    this.drift = new DriftMonitor(inputContract(p.config));
    this.pipeline = new RecalibrationPipeline({
      config: p.config,
      fp32Sha256: p.fp32Sha256,
      worker: p.worker,
      engine: p.engine,
      buffer: this.buffer,
      store: p.store,
      drift: this.drift,
      events: p.events,
      log: p.log,
      fs: p.fs,
      counters: this.counters,
      method: p.method,
      isClosed: () => this.closed,
    });
    this.cron = new RecalibrationCron(() => this.trigger('cron'));
    this.cron.set(p.config.recalibration.cron);
    // Statistics live in memory and are rebuilt from the buffer in the background, so a big
    // buffer does not delay serving; recalibrations queue behind the restore.
    void this.pipeline.queue(() => this.restoreStatistics());
  }

  /** Opens the state, restores the active calibration (or makes the first) and starts serving. */
  static async start(config: CalibdConfig, log: Logger, io: StateIo = {}, boot: Pick<FirstBootParts, 'readFleetCalibration'> = {}): Promise<CalibrationAgent> {
    const fp32Bytes = serializeModel(readModel(resolve(config.model)));
    const fp32Sha256 = sha256(fp32Bytes);
    const fs = io.fs ?? realFs;
    const stateDir = resolve(config.stateDir);
    const state = openStateDb(stateDir, { logger: log as never, beforeCommit: io.beforeCommit });
    let worker: CalibrationWorker | undefined;
    let engine: InferenceEngine | undefined;
    try {
      const eventLog = new EventLog(state);
      const events = new AgentEvents(eventLog, log);
      if (state.movedAside) events.emit('error', { message: `corrupt database moved aside to ${state.movedAside}` }, false);
      const profiles = new ProfileStore(state);
      const store = new ModelStore({
        profiles,
        modelsDir: join(stateDir, 'models'),
        fp32Sha256,
        dbPath: state.path,
        movedAside: state.movedAside,
        keepVersions: () => config.retention.keepVersions,
        fs,
        events,
        log,
      });
      store.recoverVersions();
      const restored = store.restoreActive();
      // Keep calibrating with the method of what is serving (an operator may have changed it).
      const activeMethod = store.active?.method;
      const method = activeMethod && isLiveMethod(activeMethod) ? activeMethod : config.recalibration.method;
      worker = new CalibrationWorker();
      const { graph } = await worker.call('init', {
        fp32: fp32Bytes,
        method,
        perChannel: config.recalibration.perChannel,
        activationType: config.recalibration.activationType,
        biasCorrection: config.recalibration.biasCorrection,
        equalization: config.recalibration.equalization,
        maxMemoryMB: config.recalibration.maxMemoryMB,
        forgetting: config.recalibration.forgetting,
        threads: 1,
        inputRange: inputContract(config),
        inputShapes: config.inputShapes,
      });
      const model = restored ?? (await firstBoot({ config, fp32Bytes, fp32Sha256, graph, worker, store, events, log, ...boot }));
      const active = store.active;
      const label = active ? `v${active.version} ${active.method}` : 'fp32';
      engine = await InferenceEngine.create(model, { threads: config.threads, name: config.modelName, version: active?.version ?? 0, label });
      store.tidy();
      const agent = new CalibrationAgent({ config, state, events, eventLog, profiles, store, worker, engine, method, fp32Sha256, graph, fs, log });
      // What serves now (the data-free bootstrap, say), and separately the method live
      // samples will be calibrated with: the same two words as the status report.
      events.emit('started', { version: active?.version ?? 0, serving: active ? 'int8' : 'fp32', method: active?.method ?? 'fp32', liveMethod: method, bufferRows: agent.buffer.count() });
      return agent;
    } catch (err) {
      await worker?.terminate().catch((e: unknown) => log.warn({ err: e }, 'terminating the calibration worker after a failed start failed'));
      await engine?.close().catch((e: unknown) => log.warn({ err: e }, 'closing the engine after a failed start failed'));
      state.close();
      throw err;
    }
  }

  private async restoreStatistics(): Promise<void> {
    const t0 = Date.now();
    try {
      const restored = await this.pipeline.learnFromBuffer((w) => this.observeDrift(w));
      if (this.closed) return;
      this.drift.rebase();
      this.sink.emit('statistics.restored', { restoredSamples: restored, bufferRows: this.buffer.count(), ms: Date.now() - t0 }, false);
    } catch (err) {
      if (!this.closed) this.sink.emit('error', { message: `restoring statistics failed: ${(err as Error).message}` });
    }
  }

  /** Called by the API after each successful inference. Must stay cheap. */
  onInference(inputs: Record<string, { shape: number[]; data: Float32Array }>): void {
    if (this.closed) return;
    this.counters.inferences++;
    const due = everyNInferencesDue({ inferences: this.counters.inferences, lastTriggeredAt: this.lastEveryNAt, running: this.pipeline.isRunning }, this.config.recalibration.everyInferences);
    if (due) {
      this.lastEveryNAt = this.counters.inferences;
      this.trigger('every-n-inferences');
    }
    if (!isSampled(this.config.sampling.oneIn, Math.random())) return;
    if (this.worker.backlog >= MAX_BACKLOG) {
      this.counters.dropped++;
      return;
    }
    const landing = this.ingest(sampleOf(inputs));
    this.ingesting.add(landing);
    void landing.finally(() => this.ingesting.delete(landing));
  }

  /** Sampled inputs are a cache: losing a batch costs nothing served, but is said once a minute. */
  private onSampleWriteFailed(err: unknown, dropped: number): void {
    this.counters.errors++;
    if (Date.now() - this.sampleWriteReportedAt < 60_000) return;
    this.sampleWriteReportedAt = Date.now();
    this.sink.emit('error', { message: `storing sampled inputs failed; ${dropped} were dropped: ${errorMessage(err)}`, code: errorCode(err) });
  }

  private observeDrift(sample: WireSample): void {
    const first = Object.values(sample)[0];
    if (first) this.drift.observe(first.data);
  }

  /** One sample through the worker (FP32 prediction, statistics) into the buffer; may trigger a recalibration. */
  private async ingest(sample: WireSample): Promise<void> {
    const holdout = isHoldout(sample);
    try {
      const { predictions } = await this.worker.call('observe', { samples: [sample], learn: [!holdout] });
      // While closing, samples already taken are still stored (close() waits for them).
      if (!this.state.isOpen) return;
      const inputs: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = {};
      for (const [name, t] of Object.entries(sample)) inputs[name] = { dtype: 'float32', shape: t.shape, data: t.data };
      if (!this.buffer.add({ inputs, predicted: predictions[0] })) return; // non-finite
      this.counters.sampled++;
      if (holdout) this.counters.holdout++;
      else this.pipeline.learnedSinceCalibration++;
      this.observeDrift(sample);
      if (this.closed) return;
      const active = this.store.active;
      const trigger = afterSampleTrigger(
        {
          learnedSinceCalibration: this.pipeline.learnedSinceCalibration,
          rows: this.buffer.count() + this.buffer.queued,
          running: this.pipeline.isRunning,
          bootstrap: !active || active.method === 'datafree',
          driftScore: this.drift.score(),
        },
        this.config.recalibration,
      );
      if (trigger) this.trigger(trigger);
    } catch (err) {
      if (!this.closed) {
        this.counters.errors++;
        this.log.warn({ err }, 'sampling failed');
      }
    }
  }

  /** A recalibration nobody waits for (every N inferences, cron, drift, first data). */
  private trigger(trigger: Trigger): void {
    this.pipeline.recalibrate({}, trigger).catch((err: unknown) => {
      // A job that ran has reported its failure as a calibration.failed event (logged and
      // counted); this says why an automatic one ended without a version, e.g. 'closed'.
      this.log.info({ trigger, code: errorCode(err) }, `automatic recalibration ended without a new version: ${errorMessage(err)}`);
    });
  }

  /** Serialised: one calibration job at a time; later requests wait their turn. */
  recalibrate(req: RecalibrateRequest, trigger: Trigger = 'command'): Promise<RecalibrationResult> {
    return this.pipeline.recalibrate(req, trigger);
  }

  rollback(req: RollbackRequest): Promise<{ version: number }> {
    return this.pipeline.rollback(req);
  }

  /**
   * The active calibration in another tool's format (TensorRT's calibration cache for
   * ORT's TensorRT EP on a Jetson), as text: nothing is written on the device.
   */
  exportCalibration(req: ExportRequest): { format: string; version: number; text: string; tensors: number; leftOut: string[] } {
    const active = this.store.active;
    if (!active) throw new CalibdError('no-calibration', 'this device serves FP32: there is no calibration to export', { hint: 'recalibrate first (or wait for the first calibration)' });
    // The state keeps each version's profile as written into its model: no file to read.
    const cache = tensorrtCalibrationCache(active.profile as CalibrationProfile, { trtVersion: req.trtVersion });
    return { format: req.format, version: active.version, text: cache.text, tensors: cache.entries.length, leftOut: cache.rescaled };
  }

  /** This device's calibration statistics so far, as a shareable bundle (no input in it). */
  statistics(): Promise<StatisticsBundle> {
    return this.worker.call('stats', { device: this.config.deviceId });
  }

  /**
   * Builds, validates on this device's held-out samples, gates and (if accepted) serves a
   * fleet calibration. Refused before any work when it was made for another model or graph.
   */
  applyFleet(req: ApplyRequest): Promise<RecalibrationResult> {
    const { calibration } = parseFleetCalibration(req.calibration);
    checkFleetCalibration(calibration, this.fp32Sha256, this.graph);
    return this.pipeline.applyFleet(calibration, req.margin);
  }

  /**
   * Changes one runtime-tunable key (see config/runtime.ts) on the running agent; validated
   * by applyRuntimeChange, which throws a ConfigError and changes nothing on a bad value.
   * Returns the new value.
   */
  applyConfig(key: string, value: unknown): unknown {
    const next = applyRuntimeChange(this.config, key, value);
    const [section, leaf] = key.split('.') as ['sampling' | 'recalibration', string];
    if (key === 'recalibration.cron') this.cron.set(next.recalibration.cron);
    if (key === 'recalibration.method') this.pipeline.switchMethodNextTime(next.recalibration.method);
    Object.assign(this.config[section], next[section]);
    const applied = (this.config[section] as Record<string, unknown>)[leaf];
    this.sink.emit('config.changed', { key, value: applied });
    return applied;
  }

  /** What the agent counted since start, as a copy. */
  counts(): Readonly<AgentCounters> {
    return { ...this.counters };
  }

  calibrations(): unknown[] {
    return calibrationList(this.profiles.list({ limit: 100 }));
  }

  status(): Record<string, unknown> {
    return statusReport({
      config: this.config,
      fp32Sha256: this.fp32Sha256,
      startedAt: this.startedAt,
      active: this.store.active,
      running: this.pipeline.isRunning,
      liveMethod: this.pipeline.liveMethod,
      counters: this.counters,
      buffer: this.buffer.stats(),
      driftScore: this.drift.score(),
      engine: this.engine.stats(),
    });
  }

  /** Stops sampling and calibrating, flushes the buffer and closes the state. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cron.stop();
    await this.pipeline.idle();
    // Let sampled inputs queued in the worker reach the buffer (bounded by MAX_BACKLOG) before
    // the worker goes: terminating it mid-run would drop them with it.
    if (this.ingesting.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((r) => (timer = setTimeout(r, 5000)));
      await Promise.race([Promise.allSettled([...this.ingesting]), limit]);
      clearTimeout(timer);
    }
    await this.worker.terminate().catch((err: unknown) => this.log.warn({ err }, 'terminating the calibration worker failed; closing anyway'));
    try {
      this.buffer.close();
    } catch (err) {
      // The last flush failed (a full disk): those samples are lost, the state still closes.
      this.log.warn({ err }, 'flushing the sample buffer on close failed');
    }
    await this.engine.close().catch((err: unknown) => this.log.warn({ err }, 'closing the inference engine failed; closing anyway'));
    this.state.close();
  }
}

function isLiveMethod(method: string): method is RangeMethod {
  return isRangeMethod(method);
}

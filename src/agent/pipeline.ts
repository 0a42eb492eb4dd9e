// Recalibration and rollback, one job at a time: a candidate from the worker's statistics
// (or a full pass over the buffer) → validated against FP32 with the current INT8 on
// held-out samples → gate → recorded → hot-swapped. Rollback serves an earlier version's
// file the same way.
//
// What serves never disagrees with the state folder: a new session is built and warmed,
// the version is written (model file, then one transaction), and only a committed write
// switches the engine. A failed write changes nothing and is reported as an event.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CalibdError, OptionError, errorMessage, isRefusal, writeFileAtomic, type FsOps } from '../common/index.js';
import { hardwareKey, METRIC_BOUNDS, parseMetric, type SelectionResult } from '../calibration/index.js';
import type { CalibdConfig } from '../config/index.js';
import { RANGE_METHODS, isRangeMethod, type RangeMethod } from '../calibration/methods.js';
import type { ProfileRecord, SampleBuffer } from '../state/index.js';
import { fleetProfile, type FleetCalibration } from '../calibration/index.js';
import type { CalibrationProfile } from '../quant/index.js';

import type { InferenceEngine } from '../runtime/index.js';
import type { DriftMonitor } from './drift.js';
import type { Logger } from '../common/index.js';
import type { EventSink } from './events.js';
import { gate, type Figures } from './gate.js';
import { JobQueue } from './job-queue.js';
import { errorCode, type ModelStore } from './model-store.js';
import { isHoldout, toWire } from './sampler.js';
import type { Trigger } from './trigger-policy.js';
import type { CalibrationWorker } from './worker-client.js';
import type { WireSample } from './worker-protocol.js';

export interface RecalibrationResult {
  /** The new version; for 'unchanged', the active one the candidate is identical to. */
  version: number;
  state: 'accepted' | 'rejected' | 'unchanged';
  figures: Record<string, number>;
  reason: string;
}

/** What the agent has counted since start; read as a copy through CalibrationAgent.counts(). */
export interface AgentCounters {
  inferences: number;
  sampled: number;
  dropped: number;
  holdout: number;
  recalibrations: number;
  accepted: number;
  rejected: number;
  unchanged: number;
  rollbacks: number;
  /** Recalibrations refused as the caller's to fix (no samples yet, an unknown method …). */
  refused: number;
  /** Recalibrations and rollbacks that failed on calibd's side (disk, worker, model). */
  errors: number;
}

export interface PipelineParts {
  config: CalibdConfig;
  fp32Sha256: string;
  worker: CalibrationWorker;
  engine: InferenceEngine;
  buffer: SampleBuffer;
  store: ModelStore;
  drift: DriftMonitor;
  events: EventSink;
  log: Logger;
  fs: FsOps;
  counters: AgentCounters;
  /** The method the worker's statistics were started with. */
  method: RangeMethod;
  isClosed: () => boolean;
}

export class RecalibrationPipeline {
  private readonly jobs = new JobQueue();
  private running = false;
  private method: RangeMethod;
  /** Set by applyConfig('recalibration.method'): the method the next recalibration switches to. */
  private nextMethod: RangeMethod | null = null;
  /** Samples learned since the last recalibration ended (the trigger policy reads it). */
  learnedSinceCalibration = 0;
  /** recalibration.auto: the cached selection for this model and hardware, once made. */
  private selection: SelectionResult | null = null;
  /** The validation metric last logged, so the choice is said once. */
  private metricLogged: string | null = null;

  constructor(private readonly p: PipelineParts) {
    this.method = p.method;
    if (p.config.recalibration.auto) this.selection = this.loadSelection();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** The method the statistics are gathered with. */
  get liveMethod(): RangeMethod {
    return this.method;
  }

  switchMethodNextTime(method: RangeMethod): void {
    this.nextMethod = method;
  }

  /** Queues `job` behind the others (the statistics restore at start is the first). */
  queue(job: () => Promise<void>): Promise<void> {
    return this.jobs.run(job);
  }

  /** Resolves once every queued job has ended. */
  idle(): Promise<void> {
    return this.jobs.idle();
  }

  /** Serialised: one calibration job at a time; later requests wait their turn. */
  recalibrate(req: { method?: string; full?: boolean }, trigger: Trigger): Promise<RecalibrationResult> {
    return this.jobs.run(() => this.recalibrateNow(req, trigger));
  }

  rollback(req: { version?: number }): Promise<{ version: number }> {
    return this.jobs.run(() => this.rollbackNow(req));
  }

  /**
   * Feeds every buffered sample that is not held out to the worker's statistics, oldest
   * first, in chunks; `each` sees every sample (held out or not). Returns the count learned.
   */
  async learnFromBuffer(each?: (sample: WireSample) => void): Promise<number> {
    let learned = 0;
    let chunk: WireSample[] = [];
    const send = async () => {
      if (chunk.length) await this.p.worker.call('observe', { samples: chunk, learn: chunk.map(() => true) });
      chunk = [];
    };
    for (const s of this.p.buffer.iterate({ newestFirst: false })) {
      if (this.p.isClosed()) break;
      const w = toWire(s);
      each?.(w);
      if (isHoldout(w)) continue;
      chunk.push(w);
      learned++;
      if (chunk.length >= 32) await send();
    }
    await send();
    return learned;
  }

  /** Held-out samples for validation: the newest ones, in the buffer. */
  private validationSet(): WireSample[] {
    this.p.buffer.flush();
    const out: WireSample[] = [];
    for (const s of this.p.buffer.iterate({ newestFirst: true })) {
      const w = toWire(s);
      if (isHoldout(w)) out.push(w);
      if (out.length >= this.p.config.recalibration.validationSlice) break;
    }
    return out;
  }

  /** What a selection's timings are valid for: the FP32 model, the CPU, ORT and threads. */
  private selectionKey(): string {
    const h = hardwareKey(this.p.config.threads);
    return JSON.stringify({ model: this.p.fp32Sha256, cpu: h.cpu, ort: h.ortVersion, threads: h.threads });
  }

  private get selectionPath(): string {
    return join(resolve(this.p.config.stateDir), 'auto-selection.json');
  }

  private loadSelection(): SelectionResult | null {
    try {
      const cached = JSON.parse(readFileSync(this.selectionPath, 'utf8')) as { key: string; selection: SelectionResult };
      return cached.key === this.selectionKey() ? cached.selection : null;
    } catch {
      // No cache yet, or one this version cannot read: the selection is made again.
      return null;
    }
  }

  /** recalibration.auto: times the nodes once per (model, CPU, ORT, threads) and caches the answer. */
  private async ensureSelection(validation: WireSample[]): Promise<SelectionResult | null> {
    if (!this.p.config.recalibration.auto || this.selection || validation.length === 0) return this.selection;
    const selection = await this.p.worker.call('select', { samples: validation, threads: this.p.config.threads });
    writeFileAtomic(this.selectionPath, JSON.stringify({ key: this.selectionKey(), selection }), this.p.fs);
    this.selection = selection;
    this.p.events.emit('selection', { outcome: selection.outcome, int8Nodes: selection.int8Nodes, exclude: selection.exclude.length, ratio: round(selection.latency.ratio, 3), agreement: round(selection.accuracy.auto.agreement * 100) });
    return selection;
  }

  private async recalibrateNow(req: { method?: string; full?: boolean }, trigger: Trigger): Promise<RecalibrationResult> {
    const { worker, buffer } = this.p;
    const method = req.method ?? this.nextMethod ?? this.method;
    if (!isRangeMethod(method)) {
      throw new OptionError(`unknown calibration method '${method}'`, { value: method, hint: `use one of ${RANGE_METHODS.join(', ')}` });
    }
    return this.candidateJob(trigger, { method, full: Boolean(req.full || method !== this.method) }, async (validation) => {
      if (buffer.count() === 0) {
        throw new CalibdError('no-samples', 'the sample buffer is empty; nothing to calibrate from', { hint: 'send some inference requests first' });
      }
      if (req.full || method !== this.method) {
        await worker.call('restart', { method });
        this.method = method;
        await this.learnFromBuffer();
      }
      this.nextMethod = null;
      const selection = await this.ensureSelection(validation);
      return worker.call('build', selection ? { exclude: selection.exclude, selection } : {});
    });
  }

  /**
   * A fleet calibration: the ranges merged from many devices' statistics, built here and
   * gated on this device's own held-out samples like any candidate. `margin` (metric points)
   * replaces the configured gate margin: a fleet calibration may give up a little on this
   * device's scene for the scenes of the others.
   */
  applyFleet(calibration: FleetCalibration, margin?: number): Promise<RecalibrationResult> {
    return this.jobs.run(() =>
      this.candidateJob('fleet', { method: calibration.method, devices: calibration.devices.length }, () => this.p.worker.call('build', { ranges: calibration.ranges, extra: fleetProfile(calibration) }), margin),
    );
  }

  /**
   * Runs one candidate through validation, the gate and the swap. `make` builds the candidate
   * (it may refuse); everything it throws is counted and reported as calibration.failed.
   */
  private async candidateJob(
    trigger: Trigger,
    said: Record<string, unknown>,
    make: (validation: WireSample[]) => Promise<{ model: Uint8Array; profile: CalibrationProfile }>,
    margin?: number,
  ): Promise<RecalibrationResult> {
    const { config, worker, buffer, store, counters, events } = this.p;
    if (this.p.isClosed()) throw new CalibdError('closed', 'calibd is shutting down');
    this.running = true;
    const started = Date.now();
    counters.recalibrations++;
    events.emit('calibration.started', { trigger, ...said });
    try {
      buffer.flush();
      const validation = this.validationSet();
      const { model, profile } = await make(validation);
      const active = store.active;
      if (active && store.isActiveModel(model)) return this.unchanged(active, trigger);
      const current = store.activeModelBytes();
      const cmp = validation.length
        ? await worker.call('compare', { candidate: model, current, samples: validation, metric: config.validation.metric })
        : { candidate: { agreement: 0, sqnrDb: 0, samples: 0 }, current: null };
      const metric = parseMetric(cmp.candidate.metric ?? config.validation.metric ?? 'top1');
      if (cmp.candidate.metric && this.metricLogged !== metric.name) {
        this.metricLogged = metric.name;
        this.p.log.info({ metric: metric.name, inferred: config.validation.metric === null }, `validation metric: ${metric.name}${config.validation.metric === null ? ' (inferred from the output)' : ''}`);
      }
      const floor = config.validation.floor ?? METRIC_BOUNDS[metric.kind].floor;
      // A data-free calibration is a bootstrap until live data arrives: the first calibration
      // from real samples replaces it when it clears the floor, as when serving FP32.
      const bootstrap = active?.method === 'datafree';
      const decision = gate(cmp.candidate, bootstrap ? null : cmp.current, margin ?? config.recalibration.gateMargin, floor, metric);
      const figures = figuresOf(cmp.candidate, cmp.current, Date.now() - started);
      profile.validation = figures;
      const parent = active?.version ?? null;
      if (!decision.accept) {
        const version = store.recordRejected(profile, { ...figures, reason: decision.reason, trigger }, parent);
        counters.rejected++;
        this.learnedSinceCalibration = 0;
        events.emit('calibration.rejected', { version, trigger, reason: decision.reason, ...figures });
        return { version, state: 'rejected', figures, reason: decision.reason };
      }
      const t = await this.switchTo(model, `${config.modelName} candidate`, () => store.recordActive(model, profile, { ...figures, reason: decision.reason, trigger }, parent));
      counters.accepted++;
      events.emit('calibration.accepted', { ...t, trigger, reason: decision.reason, ...figures });
      store.prune();
      return { version: t.version, state: 'accepted', figures, reason: decision.reason };
    } catch (err) {
      if (isRefusal(err)) counters.refused++;
      else counters.errors++;
      events.emit('calibration.failed', { trigger, message: errorMessage(err), code: errorCode(err), serving: store.active?.version ?? 0 });
      throw err;
    } finally {
      this.running = false;
      this.learnedSinceCalibration = 0;
    }
  }

  /** A candidate identical to the active version: no new version, no swap, said as such. */
  private unchanged(active: ProfileRecord, trigger: Trigger): RecalibrationResult {
    const reason = `the candidate is identical to the active calibration v${active.version} (same scales and zero points); no new version`;
    this.p.counters.unchanged++;
    this.p.events.emit('calibration.unchanged', { version: active.version, trigger, reason });
    const figures: Record<string, number> = {};
    for (const [k, v] of Object.entries(active.figures)) if (typeof v === 'number') figures[k] = v;
    return { version: active.version, state: 'unchanged', figures, reason };
  }

  /**
   * Serves `model` as the version `record` writes to the database. The session is built and
   * warmed first, the write comes next, and the engine switches only once it committed; a
   * failed write discards the session. So what serves, what status says and what a restart
   * comes back to never disagree. `record` returns the version it made active.
   */
  private async switchTo(model: Uint8Array, source: string, record: () => number): Promise<{ version: number; swapMs: number; buildMs: number; warmMs: number }> {
    const t0 = Date.now();
    const prepared = await this.p.engine.prepareSwap(model, source);
    let version: number;
    try {
      version = record();
    } catch (err) {
      await prepared.discard();
      throw err;
    }
    const active = this.p.store.served(version);
    prepared.commit({ version: active.version, label: `v${active.version} ${active.method}` });
    this.p.drift.rebase();
    return { version: active.version, swapMs: Date.now() - t0, buildMs: round(prepared.buildMs, 1), warmMs: round(prepared.warmMs, 1) };
  }

  private async rollbackNow(req: { version?: number }): Promise<{ version: number }> {
    const { store, counters, events } = this.p;
    const cur = store.active;
    const target = req.version === undefined ? store.previous() : this.p.store.versionFor(req.version);
    if (!target) throw new OptionError('no earlier accepted calibration to roll back to', { hint: 'recalibrate first' });
    const modelPath = store.restorablePath(target);
    if (cur && target.version === cur.version) return { version: cur.version };
    const to = target.version;
    const bytes = new Uint8Array(readFileSync(modelPath));
    try {
      const t = await this.switchTo(bytes, `${this.p.config.modelName} v${to}`, () => store.recordRollback(to));
      counters.rollbacks++;
      events.emit('rollback', { ...t, from: cur?.version ?? 0 });
    } catch (err) {
      counters.errors++;
      events.emit('rollback.failed', { to, message: errorMessage(err), code: errorCode(err), serving: store.active?.version ?? 0 });
      throw err;
    }
    return { version: to };
  }
}

function figuresOf(c: Figures, cur: Figures | null, ms: number): Record<string, number> {
  const f: Record<string, number> = { agreement: round(c.agreement * 100), sqnrDb: round(c.sqnrDb), validationSamples: c.samples, durationMs: ms };
  if (c.value !== undefined) f.metricValue = round(c.value, 4);
  if (cur?.value !== undefined) f.activeMetricValue = round(cur.value, 4);
  if (cur) {
    f.activeAgreement = round(cur.agreement * 100);
    f.activeSqnrDb = round(cur.sqnrDb);
  }
  return f;
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x > 0 ? 999 : -999;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

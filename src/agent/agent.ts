// The daemon's policy: what is served, when to recalibrate, whether a candidate may
// replace the active calibration, and rollback. It owns the sample buffer, the profile
// history and the calibration worker, and implements the API's AdminControl.
//
//   request → onInference (sync, O(1)) ─ 1 in k ─► worker tap (FP32 prediction, decayed
//   statistics) → buffer row.  Every N inferences · cron · drift · command → candidate from
//   the statistics (or a full pass over the buffer) → validated against FP32 with the
//   current INT8 on held-out samples → gate → write file, record version, hot-swap.
//
// The state folder never disagrees with what serves: a new session is built and warmed,
// the version is written (model file, then one transaction), and only a committed write
// switches the engine. A failed write changes nothing and is reported as an event. The
// history is bounded by retention.keepVersions, and a lost version table is rebuilt from
// the calibration each model file carries (recovery.ts).
//
// Held-out samples are chosen by a hash of their content, so the same rows are held out
// whether they arrive live or are re-read from the buffer after a restart.

import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { schedule, type ScheduledTask } from 'node-cron';
import { CalibdError, OptionError, StateError, calibdVersion, errorMessage, realFs, writeFileAtomic, type FsOps, type Logger } from '../common/index.js';
import { hasDynamicInput, hardwareKey, METRIC_BOUNDS, parseMetric, RANGE_METHODS, type CalibrationMethod, type SelectionResult } from '../calibration/index.js';
import { EventLog, ProfileStore, SampleBuffer, openStateDb, type NewProfile, type ProfileRecord, type StateDb, type StoredSample } from '../buffer/index.js';
import { applyRuntimeChange, type CalibdConfig } from '../config/index.js';
import { parseModel, readModel, serializeModel, type ModelProto } from '../onnx/index.js';
import { graphSha256, sha256, type CalibrationProfile } from '../quant/index.js';
import { InferenceEngine } from '../runtime/index.js';
import { DriftMonitor } from './drift.js';
import { modelFiles, rebuildSummary, rebuildVersions } from './recovery.js';
import { gate, type Figures } from './gate.js';
import { CalibrationWorker } from './worker-client.js';
import type { WireSample } from './worker-protocol.js';

/** Kept for callers of the agent's old name; the one logger type is common's `Logger`. */
export type AgentLogger = Logger;

/**
 * The seams of the agent's state I/O: the file operations behind model files, and a hook
 * run before each SQLite commit. Tests pass faulty ones to inject disk errors.
 */
export interface StateIo {
  fs?: FsOps;
  beforeCommit?: (what: string) => void;
}

export interface RecalibrationResult {
  /** The new version; for 'unchanged', the active one the candidate is identical to. */
  version: number;
  state: 'accepted' | 'rejected' | 'unchanged';
  figures: Record<string, number>;
  reason: string;
}

export interface AgentEvent {
  type: string;
  time: number;
  data: Record<string, unknown>;
}

type Trigger = 'command' | 'schedule' | 'cron' | 'drift' | 'first-data';

const LIVE_METHODS: readonly string[] = RANGE_METHODS;
/** One sample in this many is held out for validation. */
const HOLDOUT_EVERY = 5;
/** Sampled inputs waiting for the worker beyond this are dropped (and counted). */
const MAX_BACKLOG = 64;

export function isHoldout(sample: WireSample): boolean {
  let h = 0x811c9dc5;
  for (const name of Object.keys(sample).sort()) {
    const d = sample[name].data;
    const step = Math.max(1, Math.floor(d.length / 64));
    for (let i = 0; i < d.length; i += step) {
      h ^= Math.round(d[i] * 1e6) | 0;
      h = Math.imul(h, 0x01000193);
    }
  }
  return (h >>> 0) % HOLDOUT_EVERY === 0;
}

function toWire(s: StoredSample): WireSample {
  const w: WireSample = {};
  for (const [name, t] of Object.entries(s.inputs)) w[name] = { shape: t.shape, data: t.data };
  return w;
}

export class CalibrationAgent extends EventEmitter {
  readonly buffer: SampleBuffer;
  readonly profiles: ProfileStore;
  readonly events: EventLog;
  readonly drift: DriftMonitor;
  engine!: InferenceEngine;
  private worker!: CalibrationWorker;
  private cronTask: ScheduledTask | null = null;
  private job: Promise<unknown> = Promise.resolve();
  private running = false;
  /** The validation metric last logged, so the choice is said once. */
  private metricLogged: string | null = null;
  private closed = false;
  private readonly sha: string;
  private fp32Bytes: Uint8Array;
  private active: ProfileRecord | null = null;
  private method: CalibrationMethod;
  /** Set by applyConfig('recalibration.method'): the method the next recalibration switches to. */
  private nextMethod: CalibrationMethod | null = null;
  /** Sampled inputs on their way through the worker to the buffer; close() lets them land. */
  private readonly ingesting = new Set<Promise<void>>();
  /** recalibration.auto: the cached selection for this model and hardware, once made. */
  private selection: SelectionResult | null = null;
  private lastCalibrationAt = 0; // inference count
  private learnedSinceCalibration = 0;
  readonly counters = { inferences: 0, sampled: 0, dropped: 0, holdout: 0, recalibrations: 0, accepted: 0, rejected: 0, unchanged: 0, rollbacks: 0, errors: 0 };
  private readonly startedAt = Date.now();
  /** Set while the version table was lost: model files it cannot account for are kept. */
  private keepUnreferencedFiles = false;
  /** When a failed sample write was last reported as an event (they repeat every flush on a full disk). */
  private sampleWriteReportedAt = -Infinity;
  /** graphSha256 of the active version's model file, computed once per file. */
  private activeGraph: { path: string; sha: string } | null = null;

  private constructor(
    readonly config: CalibdConfig,
    readonly state: StateDb,
    private readonly fp32: ModelProto,
    private readonly log: AgentLogger,
    private readonly fs: FsOps,
  ) {
    super();
    this.fp32Bytes = serializeModel(fp32);
    this.sha = sha256(this.fp32Bytes);
    this.method = config.recalibration.method as CalibrationMethod;
    const s = config.sampling;
    this.buffer = new SampleBuffer(state, {
      maxRows: s.maxRows,
      maxBytes: s.maxBytes,
      maxAgeMs: s.maxAgeHours * 3600_000,
      onFlushError: (err, dropped) => this.onSampleWriteFailed(err, dropped),
    });
    this.profiles = new ProfileStore(state);
    this.events = new EventLog(state);
    this.drift = new DriftMonitor({ min: config.inputRange.min, max: config.inputRange.max });
  }

  /** Opens the state, restores statistics from the buffer and starts serving. */
  static async start(config: CalibdConfig, log: AgentLogger, io: StateIo = {}): Promise<CalibrationAgent> {
    const fp32 = readModel(resolve(config.model));
    const stateDir = resolve(config.stateDir);
    const state = openStateDb(stateDir, { logger: log as never, beforeCommit: io.beforeCommit });
    const agent = new CalibrationAgent(config, state, fp32, log, io.fs ?? realFs);
    if (state.movedAside) agent.emitEvent('error', { message: `corrupt database moved aside to ${state.movedAside}` }, false);
    try {
      await agent.boot();
    } catch (err) {
      await agent.close();
      throw err;
    }
    return agent;
  }

  private get modelsDir(): string {
    return join(resolve(this.config.stateDir), 'models');
  }

  private async boot(): Promise<void> {
    mkdirSync(this.modelsDir, { recursive: true });
    this.recoverVersions();
    const restoredModel = this.restoreActive();
    // Keep calibrating with the method of what is serving (an operator may have changed it).
    if (this.active && LIVE_METHODS.includes(this.active.method)) this.method = this.active.method as CalibrationMethod;
    this.worker = new CalibrationWorker();
    await this.worker.call('init', {
      fp32: this.fp32Bytes,
      method: this.method,
      perChannel: this.config.recalibration.perChannel,
      biasCorrection: this.config.recalibration.biasCorrection,
      equalization: this.config.recalibration.equalization,
      maxMemoryMB: this.config.recalibration.maxMemoryMB,
      forgetting: this.config.recalibration.forgetting,
      threads: 1,
      inputRange: this.config.inputRange,
      inputShapes: this.config.inputShapes,
    });
    if (this.config.recalibration.auto) this.selection = this.loadSelection();
    const model = restoredModel ?? (await this.firstBoot());
    const label = this.active ? `v${this.active.version} ${this.active.method}` : 'fp32';
    this.engine = await InferenceEngine.create(model, { threads: this.config.threads, name: this.config.modelName, version: this.active?.version ?? 0, label });
    // retention.keepVersions may have been lowered while calibd was stopped.
    if (!this.keepUnreferencedFiles) this.pruneVersions();
    this.cleanOrphans();
    if (this.config.recalibration.cron) {
      this.cronTask = schedule(this.config.recalibration.cron, () => {
        void this.recalibrate({}, 'cron').catch(() => undefined);
      });
    }
    // Statistics live in memory and are rebuilt from the buffer in the background, so a big
    // buffer does not delay serving; recalibrations queue behind the restore.
    const restore = this.restoreStatistics();
    this.job = restore.catch(() => undefined);
    this.emitEvent('started', { version: this.active?.version ?? 0, serving: this.active ? 'int8' : 'fp32', method: this.method, bufferRows: this.buffer.count() });
  }

  /**
   * Feeds every buffered sample that is not held out to the worker's statistics, oldest
   * first, in chunks; `each` sees every sample (held out or not). Returns the count learned.
   */
  private async learnFromBuffer(each?: (sample: WireSample) => void): Promise<number> {
    let learned = 0;
    let chunk: WireSample[] = [];
    const send = async () => {
      if (chunk.length) await this.worker.call('observe', { samples: chunk, learn: chunk.map(() => true) });
      chunk = [];
    };
    for (const s of this.buffer.iterate({ newestFirst: false })) {
      if (this.closed) break;
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

  private async restoreStatistics(): Promise<void> {
    const t0 = Date.now();
    try {
      const restored = await this.learnFromBuffer((w) => this.observeDrift(w));
      if (this.closed) return;
      this.drift.rebase();
      this.emitEvent('statistics.restored', { restoredSamples: restored, bufferRows: this.buffer.count(), ms: Date.now() - t0 }, false);
    } catch (err) {
      if (!this.closed) this.emitEvent('error', { message: `restoring statistics failed: ${(err as Error).message}` });
    }
  }

  /** What a selection's timings are valid for: the FP32 model, the CPU, ORT and threads. */
  private selectionKey(): string {
    const h = hardwareKey(this.config.threads);
    return JSON.stringify({ model: this.sha, cpu: h.cpu, ort: h.ortVersion, threads: h.threads });
  }

  private get selectionPath(): string {
    return join(resolve(this.config.stateDir), 'auto-selection.json');
  }

  private loadSelection(): SelectionResult | null {
    try {
      const cached = JSON.parse(readFileSync(this.selectionPath, 'utf8')) as { key: string; selection: SelectionResult };
      return cached.key === this.selectionKey() ? cached.selection : null;
    } catch {
      return null;
    }
  }

  /** recalibration.auto: times the nodes once per (model, CPU, ORT, threads) and caches the answer. */
  private async ensureSelection(validation: WireSample[]): Promise<SelectionResult | null> {
    if (!this.config.recalibration.auto || this.selection || validation.length === 0) return this.selection;
    const selection = await this.worker.call('select', { samples: validation, threads: this.config.threads });
    writeFileAtomic(this.selectionPath, JSON.stringify({ key: this.selectionKey(), selection }), this.fs);
    this.selection = selection;
    this.emitEvent('selection', { outcome: selection.outcome, int8Nodes: selection.int8Nodes, exclude: selection.exclude.length, ratio: round(selection.latency.ratio, 3), agreement: round(selection.accuracy.auto.agreement * 100) });
    return selection;
  }

  /**
   * A database without a single version next to model files has lost its table (it was
   * damaged and replaced, or deleted). The files say how they were calibrated, so the table
   * is rebuilt from them; nothing in the models folder is deleted on this start.
   */
  private recoverVersions(): void {
    if (this.state.movedAside) this.keepUnreferencedFiles = true;
    if (this.profiles.count() > 0 || modelFiles(this.modelsDir).length === 0) return;
    this.keepUnreferencedFiles = true;
    try {
      const r = rebuildVersions(this.profiles, { modelsDir: this.modelsDir, servedSha256: this.sha, damagedDb: this.state.movedAside, fs: this.fs });
      this.emitEvent('state.rebuilt', {
        message: rebuildSummary(r),
        versions: r.versions.map((v) => v.version),
        active: r.active,
        activeFrom: r.activeFrom,
        unaccounted: r.unaccounted,
      });
    } catch (err) {
      this.emitEvent('error', { message: `rebuilding the calibration versions from the model files failed; the files are kept: ${errorMessage(err)}`, code: errorCode(err) });
    }
  }

  /** The active calibration of this FP32 model, if its file is intact; else the newest accepted one. */
  private restoreActive(): Uint8Array | null {
    const candidates = [this.profiles.active(), ...this.profiles.list({ modelSha256: this.sha, limit: Infinity }).filter((p) => p.state === 'accepted')];
    for (const p of candidates) {
      if (!p || p.modelSha256 !== this.sha || !p.modelPath) continue;
      try {
        const bytes = readFileSync(p.modelPath);
        readModel(p.modelPath); // parses: a torn or foreign file is skipped
        if (p.state !== 'active') this.profiles.setActive(p.version);
        this.active = this.profiles.get(p.version) ?? p;
        return bytes;
      } catch (err) {
        this.emitEvent('error', { message: `calibration v${p.version} cannot be restored: ${(err as Error).message}` });
      }
    }
    return null;
  }

  private async firstBoot(): Promise<Uint8Array> {
    if (this.config.firstBoot === 'fp32') {
      this.emitEvent('first-boot', { serving: 'fp32' });
      return this.fp32Bytes;
    }
    // Probes need a shape; without one a dynamic model serves FP32 until live samples
    // give the first calibration its data.
    if (!this.config.inputShapes && hasDynamicInput(parseModel(this.fp32Bytes, 'FP32 model'))) {
      this.log.info({ firstBoot: 'datafree' }, 'the model has dynamic input dimensions and no inputShapes are configured: serving FP32 until the first calibration from live samples');
      this.emitEvent('first-boot', { serving: 'fp32', reason: 'dynamic input shape' });
      return this.fp32Bytes;
    }
    const { model, profile } = await this.worker.call('datafree', {});
    let version: number;
    try {
      version = this.recordActive(model, profile, { reason: 'first boot: data-free calibration' }, null);
    } catch (err) {
      // Serving FP32 is consistent with an empty version table; the next calibration retries.
      this.emitEvent('error', { message: `first boot could not record its data-free calibration: ${errorMessage(err)}`, code: errorCode(err) });
      this.emitEvent('first-boot', { serving: 'fp32', reason: 'the data-free calibration could not be stored' });
      return this.fp32Bytes;
    }
    this.active = this.profiles.get(version)!;
    this.emitEvent('first-boot', { serving: 'int8', version, method: 'datafree' });
    return model;
  }

  private newProfile(profile: CalibrationProfile, figures: Record<string, unknown>, parent: number | null): NewProfile {
    return {
      method: profile.method,
      options: profile.options,
      sampleCount: profile.sampleCount,
      modelSha256: this.sha,
      profile,
      figures,
      parent,
    };
  }

  /** A candidate the gate turned down: its figures are kept, its model is not. */
  private recordRejected(profile: CalibrationProfile, figures: Record<string, unknown>, parent: number | null): number {
    try {
      return this.profiles.insert({ ...this.newProfile(profile, figures, parent), state: 'rejected' });
    } catch (err) {
      throw stateWriteError('recording a rejected calibration', this.state.path, err);
    }
  }

  /**
   * Records `model` as the active version: its file first, then one transaction that adds
   * the row and demotes the previous active one. When either fails, the file is removed
   * again and a StateError says what failed; the database is as it was.
   */
  private recordActive(model: Uint8Array, profile: CalibrationProfile, figures: Record<string, unknown>, parent: number | null): number {
    const modelPath = join(this.modelsDir, `${sha256(model).slice(0, 16)}.onnx`);
    try {
      writeFileAtomic(modelPath, model, this.fs);
    } catch (err) {
      // A failed folder fsync comes after the rename: the file may be in place.
      this.removeUnrecorded(modelPath);
      throw stateWriteError('writing the model file', modelPath, err);
    }
    try {
      return this.profiles.insert({ ...this.newProfile(profile, figures, parent), modelPath, state: 'active' });
    } catch (err) {
      this.removeUnrecorded(modelPath);
      throw stateWriteError('recording the new calibration', this.state.path, err);
    }
  }

  /** Deletes a model file no version refers to; a failure only leaves an orphan for the next start. */
  private removeUnrecorded(modelPath: string): void {
    try {
      if (this.profiles.list({ limit: Infinity }).some((p) => p.modelPath === modelPath)) return;
      this.fs.rmSync(modelPath, { force: true });
    } catch (err) {
      this.log.warn({ err, modelPath }, 'could not remove an unrecorded model file; the next start removes it');
    }
  }

  /**
   * Removes model files no profile refers to (left by a crash between write and record, or
   * between pruning a version and deleting its file), and the temporaries of writes a crash
   * cut short (writeFileAtomic's `.<name>.<pid>.<time>.tmp`). After the version table was
   * lost, unreferenced model files are kept: the fresh table cannot vouch for them.
   */
  private cleanOrphans(): void {
    const used = new Set(this.profiles.list({ limit: Infinity }).map((p) => p.modelPath).filter(Boolean) as string[]);
    for (const f of readdirSync(this.modelsDir)) {
      const p = join(this.modelsDir, f);
      const torn = f.startsWith('.') && f.endsWith('.tmp');
      const orphan = !used.has(p) && f.endsWith('.onnx') && !this.keepUnreferencedFiles;
      if (torn || orphan) this.fs.rmSync(p, { force: true });
    }
  }

  /** Called by the API after each successful inference. Must stay cheap. */
  onInference(inputs: Record<string, { shape: number[]; data: Float32Array }>): void {
    if (this.closed) return;
    this.counters.inferences++;
    const r = this.config.recalibration;
    if (r.everyInferences > 0 && this.counters.inferences - this.lastCalibrationAt >= r.everyInferences && !this.running) {
      this.lastCalibrationAt = this.counters.inferences;
      void this.recalibrate({}, 'schedule').catch(() => undefined);
    }
    if (Math.random() * this.config.sampling.oneIn >= 1) return;
    if (this.worker.backlog >= MAX_BACKLOG) {
      this.counters.dropped++;
      return;
    }
    // Copy: the request's buffers are reused once the response is sent.
    const sample: WireSample = {};
    for (const [name, t] of Object.entries(inputs)) {
      const n = t.shape[0] ?? 1;
      if (n !== 1) {
        // Batched requests are sampled as their first row; every row looks alike to the stats.
        const per = t.data.length / n;
        sample[name] = { shape: [1, ...t.shape.slice(1)], data: t.data.slice(0, per) };
      } else sample[name] = { shape: [...t.shape], data: t.data.slice() };
    }
    const landing = this.ingest(sample);
    this.ingesting.add(landing);
    void landing.finally(() => this.ingesting.delete(landing));
  }

  /** Sampled inputs are a cache: losing a batch costs nothing served, but is said once a minute. */
  private onSampleWriteFailed(err: unknown, dropped: number): void {
    this.counters.errors++;
    if (Date.now() - this.sampleWriteReportedAt < 60_000) return;
    this.sampleWriteReportedAt = Date.now();
    this.emitEvent('error', { message: `storing sampled inputs failed; ${dropped} were dropped: ${errorMessage(err)}`, code: errorCode(err) });
  }

  private observeDrift(sample: WireSample): void {
    const first = Object.values(sample)[0];
    if (first) this.drift.observe(first.data);
  }

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
      else this.learnedSinceCalibration++;
      this.observeDrift(sample);
      if (this.closed) return;
      const r = this.config.recalibration;
      const enough = this.learnedSinceCalibration >= Math.max(10, Math.floor(r.minSamples / 2));
      // Rows still queued for the next flush count too: a short burst of requests would
      // otherwise never reach minSamples before the stream stops.
      if (!this.running && enough && this.buffer.count() + this.buffer.queued >= r.minSamples) {
        if (!this.active || this.active.method === 'datafree') {
          void this.recalibrate({}, 'first-data').catch(() => undefined);
        } else if (this.drift.score() > r.driftThreshold) {
          void this.recalibrate({}, 'drift').catch(() => undefined);
        }
      }
    } catch (err) {
      if (!this.closed) {
        this.counters.errors++;
        this.log.warn({ err }, 'sampling failed');
      }
    }
  }

  /** Held-out samples for validation: the newest ones, in the buffer. */
  private validationSet(): WireSample[] {
    this.buffer.flush();
    const out: WireSample[] = [];
    for (const s of this.buffer.iterate({ newestFirst: true })) {
      const w = toWire(s);
      if (isHoldout(w)) out.push(w);
      if (out.length >= this.config.recalibration.validationSlice) break;
    }
    return out;
  }

  /** Serialised: one calibration job at a time; later requests wait their turn. */
  recalibrate(req: { method?: string; full?: boolean }, trigger: Trigger = 'command'): Promise<RecalibrationResult> {
    const run = this.job.then(() => this.recalibrateNow(req, trigger));
    this.job = run.catch(() => undefined);
    return run;
  }

  private async recalibrateNow(req: { method?: string; full?: boolean }, trigger: Trigger): Promise<RecalibrationResult> {
    if (this.closed) throw new CalibdError('closed', 'calibd is shutting down');
    const method = (req.method ?? this.nextMethod ?? this.method) as CalibrationMethod;
    if (!LIVE_METHODS.includes(method)) {
      throw new OptionError(`unknown calibration method '${method}'`, { value: method, hint: `use one of ${LIVE_METHODS.join(', ')}` });
    }
    this.running = true;
    const started = Date.now();
    this.counters.recalibrations++;
    this.emitEvent('calibration.started', { trigger, method, full: Boolean(req.full || method !== this.method) });
    try {
      this.buffer.flush();
      if (this.buffer.count() === 0) {
        throw new CalibdError('no-samples', 'the sample buffer is empty; nothing to calibrate from', { hint: 'send some inference requests first' });
      }
      if (req.full || method !== this.method) {
        await this.worker.call('restart', { method });
        this.method = method;
        await this.learnFromBuffer();
      }
      this.nextMethod = null;
      const validation = this.validationSet();
      const selection = await this.ensureSelection(validation);
      const { model, profile } = await this.worker.call('build', selection ? { exclude: selection.exclude, selection } : {});
      if (this.active && this.isActiveModel(model)) return this.unchanged(this.active, trigger);
      const current = this.active?.modelPath ? readFileSync(this.active.modelPath) : null;
      const cmp = validation.length
        ? await this.worker.call('compare', { candidate: model, current: current ? new Uint8Array(current) : null, samples: validation, metric: this.config.validation.metric })
        : { candidate: { agreement: 0, sqnrDb: 0, samples: 0 }, current: null };
      const metric = parseMetric(cmp.candidate.metric ?? this.config.validation.metric ?? 'top1');
      if (cmp.candidate.metric && this.metricLogged !== metric.name) {
        this.metricLogged = metric.name;
        this.log.info({ metric: metric.name, inferred: this.config.validation.metric === null }, `validation metric: ${metric.name}${this.config.validation.metric === null ? ' (inferred from the output)' : ''}`);
      }
      const floor = this.config.validation.floor ?? METRIC_BOUNDS[metric.kind].floor;
      // A data-free calibration is a bootstrap until live data arrives: the first calibration
      // from real samples replaces it when it clears the floor, as when serving FP32.
      const bootstrap = this.active?.method === 'datafree';
      const decision = gate(cmp.candidate, bootstrap ? null : cmp.current, this.config.recalibration.gateMargin, floor, metric);
      const figures = this.figures(cmp.candidate, cmp.current, Date.now() - started);
      profile.validation = figures;
      const parent = this.active?.version ?? null;
      if (!decision.accept) {
        const version = this.recordRejected(profile, { ...figures, reason: decision.reason, trigger }, parent);
        this.counters.rejected++;
        this.learnedSinceCalibration = 0;
        this.emitEvent('calibration.rejected', { version, trigger, reason: decision.reason, ...figures });
        return { version, state: 'rejected', figures, reason: decision.reason };
      }
      const t = await this.switchTo(model, `${this.config.modelName} candidate`, () => this.recordActive(model, profile, { ...figures, reason: decision.reason, trigger }, parent));
      this.counters.accepted++;
      this.emitEvent('calibration.accepted', { ...t, trigger, reason: decision.reason, ...figures });
      this.pruneVersions();
      const version = t.version;
      return { version, state: 'accepted', figures, reason: decision.reason };
    } catch (err) {
      this.counters.errors++;
      this.emitEvent('calibration.failed', { trigger, message: errorMessage(err), code: errorCode(err), serving: this.active?.version ?? 0 });
      throw err;
    } finally {
      this.running = false;
      this.learnedSinceCalibration = 0;
    }
  }

  /**
   * True when `model` computes exactly what the active version's file does (the same scales,
   * zero points and weights; only the metadata differs). Serving it would change nothing.
   */
  private isActiveModel(model: Uint8Array): boolean {
    const path = this.active?.modelPath;
    if (!path) return false;
    if (this.activeGraph?.path !== path) this.activeGraph = { path, sha: graphSha256(readModel(path)) };
    return graphSha256(parseModel(model, 'candidate')) === this.activeGraph.sha;
  }

  /** A candidate identical to the active version: no new version, no swap, said as such. */
  private unchanged(active: ProfileRecord, trigger: Trigger): RecalibrationResult {
    const reason = `the candidate is identical to the active calibration v${active.version} (same scales and zero points); no new version`;
    this.counters.unchanged++;
    this.emitEvent('calibration.unchanged', { version: active.version, trigger, reason });
    const figures: Record<string, number> = {};
    for (const [k, v] of Object.entries(active.figures)) if (typeof v === 'number') figures[k] = v;
    return { version: active.version, state: 'unchanged', figures, reason };
  }

  /**
   * Keeps the newest retention.keepVersions versions a rollback could return to (accepted
   * or rolled back) with their model files, plus the active one. Older versions stay listed
   * as history without a file. Their model_path is cleared first, in one transaction, and
   * the files are deleted after: an interruption leaves files no version names, which the
   * next start removes, and the database never names a missing file.
   */
  private pruneVersions(): void {
    const all = this.profiles.list({ limit: Infinity });
    const older = all.filter((p) => p.modelPath && (p.state === 'accepted' || p.state === 'rolled_back')).slice(this.config.retention.keepVersions);
    if (older.length === 0) return;
    try {
      this.profiles.forgetModelFiles(older.map((p) => p.version));
    } catch (err) {
      this.emitEvent('error', { message: `pruning old calibration versions failed; they are kept: ${errorMessage(err)}`, code: errorCode(err) });
      return;
    }
    const pruned = new Set(older.map((p) => p.version));
    // Two versions never share a file today; this keeps it safe if they ever do.
    const stillNamed = new Set(all.filter((p) => !pruned.has(p.version)).map((p) => p.modelPath));
    const left: string[] = [];
    for (const p of older) {
      if (stillNamed.has(p.modelPath)) continue;
      try {
        this.fs.rmSync(p.modelPath!, { force: true });
      } catch (err) {
        left.push(p.modelPath!);
        this.log.warn({ err, modelPath: p.modelPath }, 'could not delete a pruned model file; the next start removes it');
      }
    }
    this.emitEvent('versions.pruned', { versions: [...pruned], keepVersions: this.config.retention.keepVersions, ...(left.length ? { filesLeft: left } : {}) });
  }

  private figures(c: Figures, cur: Figures | null, ms: number): Record<string, number> {
    const f: Record<string, number> = {
      agreement: round(c.agreement * 100),
      sqnrDb: round(c.sqnrDb),
      validationSamples: c.samples,
      durationMs: ms,
    };
    if (c.value !== undefined) f.metricValue = round(c.value, 4);
    if (cur?.value !== undefined) f.activeMetricValue = round(cur.value, 4);
    if (cur) {
      f.activeAgreement = round(cur.agreement * 100);
      f.activeSqnrDb = round(cur.sqnrDb);
    }
    return f;
  }

  /**
   * Serves `model` as the version `record` writes to the database. The session is built and
   * warmed first, the write comes next, and the engine switches only once it committed; a
   * failed write discards the session. So what serves, what status says and what a restart
   * comes back to never disagree. `record` returns the version it made active.
   */
  private async switchTo(model: Uint8Array, source: string, record: () => number): Promise<{ version: number; swapMs: number; buildMs: number; warmMs: number }> {
    const t0 = Date.now();
    const prepared = await this.engine.prepareSwap(model, source);
    let active: ProfileRecord;
    try {
      active = this.profiles.get(record())!;
    } catch (err) {
      await prepared.discard();
      throw err;
    }
    prepared.commit({ version: active.version, label: `v${active.version} ${active.method}` });
    this.active = active;
    this.drift.rebase();
    return { version: active.version, swapMs: Date.now() - t0, buildMs: round(prepared.buildMs, 1), warmMs: round(prepared.warmMs, 1) };
  }

  async rollback(req: { version?: number }): Promise<{ version: number }> {
    const run = this.job.then(() => this.rollbackNow(req));
    this.job = run.catch(() => undefined);
    return run;
  }

  private async rollbackNow(req: { version?: number }): Promise<{ version: number }> {
    const cur = this.active;
    let target: ProfileRecord | undefined;
    if (req.version !== undefined) {
      if (!Number.isInteger(req.version)) throw new OptionError(`version must be an integer`, { value: req.version });
      target = this.profiles.get(req.version);
      if (!target) throw new OptionError(`no calibration version ${req.version}`, { value: req.version, hint: 'list versions with GET /v2/calibd/calibrations' });
      if (target.state === 'rejected') throw new OptionError(`version ${req.version} was rejected by the gate`, { value: req.version, hint: 'roll back to an accepted version' });
    } else {
      target = this.profiles
        .list({ modelSha256: this.sha, limit: Infinity })
        .filter((p) => p.version !== cur?.version && (p.state === 'accepted' || p.state === 'rolled_back') && p.modelPath)
        .sort((a, b) => b.version - a.version)
        .find((p) => !cur || p.version < cur.version);
      if (!target) throw new OptionError('no earlier accepted calibration to roll back to', { hint: 'recalibrate first' });
    }
    const modelPath = this.restorablePath(target);
    if (cur && target.version === cur.version) return { version: cur.version };
    const to = target.version;
    const bytes = new Uint8Array(readFileSync(modelPath));
    try {
      const t = await this.switchTo(bytes, `${this.config.modelName} v${to}`, () => {
        try {
          this.profiles.setActive(to, { rollback: true });
        } catch (err) {
          throw stateWriteError(`recording the rollback to v${to}`, this.state.path, err);
        }
        return to;
      });
      this.counters.rollbacks++;
      this.emitEvent('rollback', { ...t, from: cur?.version ?? 0 });
    } catch (err) {
      this.counters.errors++;
      this.emitEvent('rollback.failed', { to, message: errorMessage(err), code: errorCode(err), serving: this.active?.version ?? 0 });
      throw err;
    }
    return { version: to };
  }

  /** The model file `target` serves from, or an OptionError saying why it cannot: another FP32 model's, pruned, or gone. */
  private restorablePath(target: ProfileRecord): string {
    const v = target.version;
    if (target.modelSha256 !== this.sha) {
      throw new OptionError(`version ${v} was calibrated for another FP32 model`, { value: v, hint: 'list versions with GET /v2/calibd/calibrations' });
    }
    if (!target.modelPath) {
      throw new OptionError(`version ${v} has no model file any more: retention.keepVersions (${this.config.retention.keepVersions}) pruned it`, {
        value: v,
        hint: 'roll back to a version listed with hasModel: true, or raise retention.keepVersions',
      });
    }
    if (!existsSync(target.modelPath)) {
      throw new OptionError(`version ${v} has no model file: ${target.modelPath} is missing`, { value: v, hint: 'roll back to another version' });
    }
    return target.modelPath;
  }

  /**
   * Changes one runtime-tunable key (see config/runtime.ts) on the running agent; validated
   * by applyRuntimeChange, which throws a ConfigError and changes nothing on a bad value.
   * Returns the new value.
   */
  applyConfig(key: string, value: unknown): unknown {
    const next = applyRuntimeChange(this.config, key, value);
    const [section, leaf] = key.split('.') as ['sampling' | 'recalibration', string];
    if (key === 'recalibration.cron') {
      this.cronTask?.stop();
      this.cronTask = next.recalibration.cron ? schedule(next.recalibration.cron, () => void this.recalibrate({}, 'cron').catch(() => undefined)) : null;
    }
    if (key === 'recalibration.method') this.nextMethod = next.recalibration.method as CalibrationMethod;
    Object.assign(this.config[section], next[section]);
    const applied = (this.config[section] as Record<string, unknown>)[leaf];
    this.emitEvent('config.changed', { key, value: applied });
    return applied;
  }

  calibrations(): unknown[] {
    return this.profiles.list({ limit: 100 }).map((p) => ({
      version: p.version,
      parent: p.parent,
      state: p.state,
      method: p.method,
      sampleCount: p.sampleCount,
      createdAt: new Date(p.createdAt).toISOString(),
      figures: p.figures,
      // False once retention pruned its file (or for rejected ones): not a rollback target.
      hasModel: p.modelPath !== null,
    }));
  }

  status(): Record<string, unknown> {
    const b = this.buffer.stats();
    return {
      calibdVersion: calibdVersion(),
      deviceId: this.config.deviceId,
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      model: { name: this.config.modelName, path: this.config.model, sha256: this.sha },
      serving: this.active ? 'int8' : 'fp32',
      calibration: {
        version: this.active?.version ?? 0,
        method: this.active?.method ?? 'fp32',
        createdAt: this.active ? new Date(this.active.createdAt).toISOString() : null,
        figures: this.active?.figures ?? {},
        running: this.running,
        liveMethod: this.method,
      },
      counters: { ...this.counters },
      buffer: { rows: b.rows, bytes: b.bytes, perClass: b.perClass, evicted: b.evicted, rejectedNonFinite: b.rejectedNonFinite },
      drift: { score: round(this.drift.score(), 4), threshold: this.config.recalibration.driftThreshold },
      engine: this.engine?.stats(),
    };
  }

  emitEvent(type: string, data: Record<string, unknown>, persist = true): void {
    const event: AgentEvent = { type, time: Date.now(), data };
    if (persist) {
      try {
        this.events.append(type, data);
      } catch (err) {
        this.log.warn({ err }, 'event log write failed');
      }
    }
    (type === 'error' || type.endsWith('.failed') ? this.log.warn : this.log.info).call(this.log, { event: type, ...data }, type);
    this.emit('event', event);
  }

  /** Stops sampling and calibrating, flushes the buffer and closes the state. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cronTask?.stop();
    await this.job.catch(() => undefined);
    // Let sampled inputs queued in the worker reach the buffer (bounded by MAX_BACKLOG) before
    // the worker goes: terminating it mid-run would drop them with it.
    if (this.ingesting.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((r) => (timer = setTimeout(r, 5000)));
      await Promise.race([Promise.allSettled([...this.ingesting]), limit]);
      clearTimeout(timer);
    }
    await this.worker?.terminate().catch(() => undefined);
    try {
      this.buffer.close();
    } catch {
      // already closed with the state
    }
    await this.engine?.close().catch(() => undefined);
    this.state.close();
  }
}

/**
 * A failed write to the state directory as a typed error naming the file, the cause's code
 * (ENOSPC, SQLITE_FULL …) and that nothing changed. Errors that are already typed pass.
 */
function stateWriteError(action: string, path: string, err: unknown): Error {
  if (err instanceof CalibdError) return err;
  const code = errorCode(err);
  const text = errorMessage(err);
  return new StateError(`${action} failed (${text.includes(code) ? text : `${code}: ${text}`}); nothing was changed`, {
    value: path,
    hint: `free space on the disk holding ${dirname(path)} or check it for I/O errors, then retry`,
    cause: err,
  });
}

/**
 * What went wrong, as a stable code for events: for a failed state write the disk's or
 * SQLite's own code (ENOSPC, SQLITE_FULL), else a CalibdError's code, else 'error'.
 */
function errorCode(err: unknown): string {
  if (err instanceof StateError && err.cause !== undefined) return errorCode(err.cause);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x > 0 ? 999 : -999;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

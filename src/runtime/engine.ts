// The serving handle: one ORT session that answers requests, checked input by input before
// anything reaches ORT, and replaced in place when a new calibration is accepted. A swap
// builds and warms the new session first, then switches with one reference assignment;
// requests already running finish on the session they started on, which is released only
// when its last request returns. prepareSwap splits the two steps so that a caller can
// record the change in between and switch only once the record is safe.

import { performance } from 'node:perf_hooks';
import { CalibdError, ModelError } from '../common/index.js';
import { printable } from '../common/errors.js';
import { DataType, GraphIndex, parseModel, serializeModel, type ModelProto } from '../onnx/index.js';
import { createSession, ort } from './session.js';

/** KServe v2 / Open Inference Protocol tensor datatypes. */
export type Datatype =
  | 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64'
  | 'FP16' | 'FP32' | 'FP64' | 'BF16' | 'BYTES';

export type OutputData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | string[];

export interface TensorMeta {
  name: string;
  datatype: Datatype;
  /** Fixed extents as numbers; null where the graph leaves the dim dynamic. */
  dims: (number | null)[];
}

export interface InferInput {
  datatype: string;
  shape: number[];
  data: Float32Array;
}

/** What a request declares about an input before its data is read. */
export type DeclaredInput = Pick<InferInput, 'datatype' | 'shape'>;

export interface InferOutput {
  datatype: Datatype;
  shape: number[];
  data: OutputData;
}

export interface InferResult {
  outputs: Record<string, InferOutput>;
  /** The version of the session that produced these outputs (not the one active now). */
  version: number;
  latencyMs: number;
}

export interface EngineOptions {
  threads?: number;
  name?: string;
  version?: number;
  label?: string;
  /** Largest first dim a request may carry (default 64): bounds memory per request. */
  maxBatch?: number;
}

export interface EngineStats {
  inferences: number;
  /** Runs that failed inside ORT; rejected requests never reach it and are not counted. */
  errors: number;
  inFlight: number;
  swaps: number;
  /** Sessions swapped out but still finishing requests. */
  retiredSessions: number;
}

/** A request does not fit the model; the caller's fault, so HTTP 400. */
export class RequestError extends CalibdError {
  readonly status = 400;
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('request', message, opts);
  }
}

/** The engine has no session to run on (closed); HTTP 503. */
export class EngineUnavailableError extends CalibdError {
  readonly status = 503;
  constructor(message: string, opts: { hint?: string; value?: unknown } = {}) {
    super('unavailable', message, opts);
  }
}

const datatypeByElemType: Partial<Record<number, Datatype>> = {
  [DataType.FLOAT]: 'FP32', [DataType.DOUBLE]: 'FP64', [DataType.FLOAT16]: 'FP16', [DataType.BFLOAT16]: 'BF16',
  [DataType.INT8]: 'INT8', [DataType.UINT8]: 'UINT8', [DataType.INT16]: 'INT16', [DataType.UINT16]: 'UINT16',
  [DataType.INT32]: 'INT32', [DataType.UINT32]: 'UINT32', [DataType.INT64]: 'INT64', [DataType.UINT64]: 'UINT64',
  [DataType.BOOL]: 'BOOL', [DataType.STRING]: 'BYTES',
};

const datatypeByOrtType: Record<string, Datatype> = {
  float32: 'FP32', float64: 'FP64', float16: 'FP16', int8: 'INT8', uint8: 'UINT8', int16: 'INT16', uint16: 'UINT16',
  int32: 'INT32', uint32: 'UINT32', int64: 'INT64', uint64: 'UINT64', bool: 'BOOL', string: 'BYTES',
};

/** One loaded model: its session and the requests currently running on it. */
class Slot {
  inFlight = 0;
  retired = false;
  released: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  readonly idle: Promise<void>;

  constructor(
    readonly session: ort.InferenceSession,
    readonly version: number,
    readonly label: string,
  ) {
    this.idle = new Promise((resolve) => (this.drained = resolve));
  }

  /** Marks the slot as replaced; releases now if nothing runs on it, else after the last request. */
  retire(): void {
    this.retired = true;
    this.releaseIfIdle();
  }

  releaseIfIdle(): void {
    if (!this.retired || this.inFlight > 0 || this.released) return;
    // A release failure leaves nothing to recover: the session is unreachable either way.
    this.released = this.session.release().catch(() => undefined);
    this.released.then(() => this.drained?.());
  }
}

/** A session built and warmed by prepareSwap, not yet serving. */
export interface PreparedSwap {
  readonly buildMs: number;
  readonly warmMs: number;
  /** Serves the prepared session from now on; a plain switch that cannot fail. */
  commit(meta: { version: number; label?: string }): void;
  /** Releases the prepared session; the current one keeps serving. */
  discard(): Promise<void>;
}

interface Loaded {
  session: ort.InferenceSession;
  buildMs: number;
  warmMs: number;
}

interface ModelInterface {
  inputs: TensorMeta[];
  outputs: TensorMeta[];
}

function readInterface(model: ModelProto, source: string): ModelInterface {
  const graph = model.graph;
  if (!graph) throw new ModelError(`${source} has no graph`, { value: source, hint: 'export the model again' });
  const index = new GraphIndex(graph);
  const meta = (v: (typeof graph.input)[number]): TensorMeta => {
    const t = v.type?.value;
    if (t?.case !== 'tensorType') {
      throw new ModelError(`${source}: '${v.name}' is not a tensor`, { value: v.name, hint: 'calibd serves tensor inputs and outputs only' });
    }
    const datatype = datatypeByElemType[t.value.elemType];
    if (!datatype) {
      throw new ModelError(`${source}: '${v.name}' has unsupported element type ${t.value.elemType}`, { value: v.name });
    }
    const dims = (t.value.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : null));
    return { name: v.name, datatype, dims };
  };
  return {
    inputs: graph.input.filter((i) => index.graphInputs.includes(i.name)).map(meta),
    outputs: graph.output.map(meta),
  };
}

function sameInterface(a: ModelInterface, b: ModelInterface): string | undefined {
  const describe = (list: TensorMeta[]) => list.map((m) => `${m.name}:${m.datatype}[${m.dims.map((d) => d ?? '?').join(',')}]`).join(' ');
  if (describe(a.inputs) !== describe(b.inputs)) return `inputs ${describe(b.inputs)} differ from the served ${describe(a.inputs)}`;
  if (describe(a.outputs) !== describe(b.outputs)) return `outputs ${describe(b.outputs)} differ from the served ${describe(a.outputs)}`;
  return undefined;
}

function warmupFeeds(inputs: TensorMeta[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const m of inputs) {
    if (m.datatype !== 'FP32') throw new ModelError(`input '${m.name}' is ${m.datatype}; calibd serves FP32 inputs only`, { value: m.name });
    // Batch 1; other dynamic dims get 32, a size most vision models accept (multiples of 32).
    const shape = m.dims.map((d, i) => d ?? (i === 0 ? 1 : 32));
    feeds[m.name] = new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  }
  return feeds;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].slice(0, 300);
}

export class InferenceEngine {
  readonly name: string;
  readonly maxBatch: number;
  private active: Slot | undefined;
  private readonly retiredSlots = new Set<Slot>();
  private iface: ModelInterface;
  private readonly threads: number | undefined;
  private swapChain: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private counts = { inferences: 0, errors: 0, swaps: 0 };

  private constructor(slot: Slot, iface: ModelInterface, opts: EngineOptions) {
    this.active = slot;
    this.iface = iface;
    this.name = opts.name ?? 'model';
    this.threads = opts.threads;
    this.maxBatch = opts.maxBatch ?? 64;
  }

  static async create(model: ModelProto | Uint8Array, opts: EngineOptions = {}): Promise<InferenceEngine> {
    const name = opts.name ?? 'model';
    const { session, iface } = await InferenceEngine.load(model, opts.threads, name);
    try {
      await session.run(warmupFeeds(iface.inputs));
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err instanceof ModelError ? err : new ModelError(`${name} fails its warm-up run: ${firstLine(err)}`, { value: name, cause: err });
    }
    return new InferenceEngine(new Slot(session, opts.version ?? 0, opts.label ?? ''), iface, opts);
  }

  private static async load(model: ModelProto | Uint8Array, threads: number | undefined, source: string) {
    const proto = model instanceof Uint8Array ? parseModel(model, source) : model;
    const iface = readInterface(proto, source);
    const bytes = model instanceof Uint8Array ? model : serializeModel(model);
    const session = await createSession(bytes, { threads }, source);
    return { session, iface };
  }

  get ready(): boolean {
    return this.active !== undefined && !this.closing;
  }

  get activeVersion(): number | undefined {
    return this.active?.version;
  }

  get label(): string | undefined {
    return this.active?.label;
  }

  get inputsMeta(): readonly TensorMeta[] {
    return this.iface.inputs;
  }

  get outputsMeta(): readonly TensorMeta[] {
    return this.iface.outputs;
  }

  stats(): EngineStats {
    let inFlight = this.active?.inFlight ?? 0;
    for (const s of this.retiredSlots) inFlight += s.inFlight;
    return { ...this.counts, inFlight, retiredSessions: this.retiredSlots.size };
  }

  /** Throws a RequestError naming the first input that does not fit the model. */
  validate(inputs: Record<string, InferInput>): void {
    this.checkDeclared(inputs);
    for (const m of this.iface.inputs) {
      const { shape, data } = inputs[m.name];
      if (!(data instanceof Float32Array)) {
        throw new RequestError(`input '${m.name}' data is not float32`, { value: m.name });
      }
      const count = shape.reduce((a, b) => a * b, 1);
      if (data.length !== count) {
        throw new RequestError(`input '${m.name}' has ${data.length} values, shape [${shape.join(',')}] needs ${count}`, { value: data.length });
      }
    }
  }

  /**
   * Throws a RequestError naming the first input whose name, datatype or shape does not fit
   * the model. The HTTP layer checks this before decoding any data, so a tensor the model
   * could never take is refused unread.
   */
  checkDeclared(inputs: Record<string, DeclaredInput>): void {
    const expected = new Map(this.iface.inputs.map((m) => [m.name, m]));
    const names = Object.keys(inputs);
    for (const name of names) {
      if (!expected.has(name)) {
        throw new RequestError(`unknown input '${printable(name)}'`, { value: name, hint: `the model's inputs are: ${[...expected.keys()].join(', ')}` });
      }
    }
    for (const m of this.iface.inputs) {
      const input = inputs[m.name];
      if (!input) throw new RequestError(`missing input '${m.name}'`, { value: m.name, hint: `send ${m.datatype} ${shapeText(m.dims)}` });
      if (input.datatype !== m.datatype) {
        throw new RequestError(`input '${m.name}' has datatype ${printable(String(input.datatype))}, expected ${m.datatype}`, { value: input.datatype });
      }
      const shape = input.shape;
      if (!Array.isArray(shape) || shape.length !== m.dims.length) {
        throw new RequestError(`input '${m.name}' has rank ${Array.isArray(shape) ? shape.length : '?'}, expected ${m.dims.length} ${shapeText(m.dims)}`, { value: shape });
      }
      for (let i = 0; i < shape.length; i++) {
        const d = shape[i];
        if (!Number.isSafeInteger(d) || d < 1) {
          throw new RequestError(`input '${m.name}' has dim ${i} = ${String(d)}, expected a positive integer`, { value: shape });
        }
        const want = m.dims[i];
        if (want !== null && d !== want) {
          throw new RequestError(`input '${m.name}' has dim ${i} = ${d}, expected ${want} ${shapeText(m.dims)}`, { value: shape });
        }
      }
      if (shape.length > 0 && shape[0] > this.maxBatch) {
        throw new RequestError(`input '${m.name}' has batch ${shape[0]}, more than the limit ${this.maxBatch}`, { value: shape[0], hint: 'split the request' });
      }
    }
  }

  async infer(inputs: Record<string, InferInput>): Promise<InferResult> {
    this.validate(inputs);
    // Reading the slot and counting the request happen with no await between them, so a
    // swap cannot release the session this request is about to run on.
    const slot = this.active;
    if (!slot || this.closing) throw new EngineUnavailableError(`engine '${this.name}' is closed`, { value: this.name });
    slot.inFlight++;
    const started = performance.now();
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const m of this.iface.inputs) feeds[m.name] = new ort.Tensor('float32', inputs[m.name].data, inputs[m.name].shape);
      const result = await slot.session.run(feeds);
      const outputs: Record<string, InferOutput> = {};
      for (const m of this.iface.outputs) {
        const t = result[m.name];
        outputs[m.name] = { datatype: datatypeByOrtType[t.type] ?? m.datatype, shape: t.dims.map(Number), data: t.data as OutputData };
      }
      this.counts.inferences++;
      return { outputs, version: slot.version, latencyMs: performance.now() - started };
    } catch (err) {
      this.counts.errors++;
      throw err instanceof CalibdError ? err : new ModelError(`inference failed: ${firstLine(err)}`, { value: this.name, cause: err });
    } finally {
      slot.inFlight--;
      slot.releaseIfIdle();
    }
  }

  /**
   * Replaces the served model. The new session is built and warmed before the switch; on any
   * failure the old one keeps serving and a ModelError is thrown. Swaps run one at a time.
   */
  async swap(model: ModelProto | Uint8Array, meta: { version: number; label?: string }): Promise<{ buildMs: number; warmMs: number }> {
    const prepared = await this.prepareSwap(model, `${this.name} v${meta.version}`);
    prepared.commit(meta);
    return { buildMs: prepared.buildMs, warmMs: prepared.warmMs };
  }

  /**
   * The first half of a swap: builds and warms a session for `model` while the current one
   * keeps serving. The caller records the change (a database write that may fail) and only
   * then commits, which cannot fail, or discards; until it does, later swaps and close()
   * wait. `source` names the model in errors.
   */
  prepareSwap(model: ModelProto | Uint8Array, source: string): Promise<PreparedSwap> {
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const run = this.swapChain.then(() => this.buildSession(model, source));
    // The chain must survive a failed swap, or every later swap would fail with it.
    this.swapChain = run.then(
      () => settled,
      () => undefined,
    );
    return run.then((loaded) => this.prepared(loaded, settle));
  }

  private async buildSession(model: ModelProto | Uint8Array, source: string): Promise<Loaded> {
    if (this.closing) throw new EngineUnavailableError(`engine '${this.name}' is closed`, { value: this.name });
    const t0 = performance.now();
    let loaded: Awaited<ReturnType<typeof InferenceEngine.load>>;
    try {
      loaded = await InferenceEngine.load(model, this.threads, source);
    } catch (err) {
      throw err instanceof ModelError ? err : new ModelError(`cannot load ${source}: ${firstLine(err)}`, { value: source, cause: err });
    }
    const t1 = performance.now();
    const { session, iface } = loaded;
    try {
      const mismatch = sameInterface(this.iface, iface);
      if (mismatch) {
        throw new ModelError(`${source} does not fit the served interface: ${mismatch}`, {
          value: source,
          hint: 'a swap keeps the inputs and outputs; restart calibd to serve a different model',
        });
      }
      await session.run(warmupFeeds(iface.inputs));
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err instanceof ModelError ? err : new ModelError(`${source} fails its warm-up run: ${firstLine(err)}`, { value: source, cause: err });
    }
    if (this.closing) {
      await session.release().catch(() => undefined);
      throw new EngineUnavailableError(`engine '${this.name}' closed during the swap`, { value: this.name });
    }
    return { session, buildMs: t1 - t0, warmMs: performance.now() - t1 };
  }

  private prepared(loaded: Loaded, settle: () => void): PreparedSwap {
    let open = true;
    const finish = () => {
      if (!open) throw new Error('a prepared swap is committed or discarded once');
      open = false;
      settle();
    };
    return {
      buildMs: loaded.buildMs,
      warmMs: loaded.warmMs,
      commit: (meta) => {
        finish();
        this.switchTo(new Slot(loaded.session, meta.version, meta.label ?? ''));
      },
      discard: async () => {
        finish();
        await loaded.session.release().catch(() => undefined);
      },
    };
  }

  /** One reference assignment: requests already running finish on the slot they started on. */
  private switchTo(slot: Slot): void {
    const old = this.active;
    this.active = slot;
    this.counts.swaps++;
    if (old) {
      this.retiredSlots.add(old);
      old.idle.then(() => this.retiredSlots.delete(old));
      old.retire();
    }
  }

  /** Stops taking requests, waits for running ones and pending swaps, releases every session. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.swapChain;
      const slot = this.active;
      this.active = undefined;
      if (slot) {
        this.retiredSlots.add(slot);
        slot.retire();
      }
      await Promise.all([...this.retiredSlots].map((s) => s.idle));
    })();
    return this.closing;
  }
}

function shapeText(dims: (number | null)[]): string {
  return `[${dims.map((d) => d ?? 'N').join(',')}]`;
}

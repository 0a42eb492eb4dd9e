// The activation tap: a copy of the FP32 model with every tensor that quantization needs
// exposed as an extra graph output, so one run yields all intermediate activations.
// Batches stream through it into the collectors; nothing is kept between batches.

import { DataType, cloneModel, serializeModel, valueInfo, type ModelProto } from '../onnx/index.js';
import { createSession, ort, type SessionOptions } from './session.js';

export type Feeds = Record<string, ort.Tensor>;

export class ActivationTap {
  private constructor(
    private session: ort.InferenceSession,
    readonly tensors: string[],
    readonly outputs: string[],
    /** The tapped model and options, kept to rebuild the session without its arena. */
    private readonly rebuild: { bytes: Uint8Array; opts: SessionOptions },
  ) {}

  /**
   * ORT's arena is on unless `opts` says otherwise: a tap that fetches the same outputs every
   * run reuses its blocks and runs 3–6× faster than one that allocates afresh (PaddleOCR
   * classifier: 2.6 instead of 8–16 ms a line). See withoutArena for when that must stop.
   */
  static async create(model: ModelProto, tensors: string[], opts: SessionOptions = {}): Promise<ActivationTap> {
    const tapped = cloneModel(model);
    const graph = tapped.graph!;
    const outputs = graph.output.map((o) => o.name);
    // Graph inputs are read from the feeds; everything else becomes an extra output.
    const existing = new Set([...outputs, ...graph.input.map((i) => i.name)]);
    for (const t of tensors) if (!existing.has(t)) graph.output.push(valueInfo(t, DataType.FLOAT));
    const bytes = serializeModel(tapped);
    const options: SessionOptions = { optimization: 'basic', memoryArena: true, ...opts };
    const session = await createSession(bytes, options, 'activation tap');
    return new ActivationTap(session, tensors, outputs, { bytes, opts: options });
  }

  /**
   * Rebuilds the session without ORT's arena. Needed once runs fetch varying groups of
   * tensors to stay inside a memory budget: the arena keeps every block it ever handed out,
   * so it would grow to the union of all groups, the very size the groups avoid.
   */
  async withoutArena(): Promise<void> {
    if (this.rebuild.opts.memoryArena === false) return;
    const opts = { ...this.rebuild.opts, memoryArena: false };
    const session = await createSession(this.rebuild.bytes, opts, 'activation tap');
    await this.session.release();
    this.session = session;
    this.rebuild.opts = opts;
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /**
   * Runs one batch; returns the tapped tensors (all, or only those in `only`, so ORT copies
   * out no more than that) and the model's own outputs.
   */
  async run(feeds: Feeds, only?: readonly string[]): Promise<{ tensors: Map<string, Float32Array>; outputs: Map<string, ort.Tensor> }> {
    const wanted = only ?? this.tensors;
    const result = only
      ? await this.session.run(feeds, [...new Set([...this.outputs, ...only.filter((t) => !(t in feeds))])])
      : await this.session.run(feeds);
    const tensors = new Map<string, Float32Array>();
    for (const t of wanted) tensors.set(t, (result[t] ?? feeds[t]).data as Float32Array);
    const outputs = new Map<string, ort.Tensor>();
    for (const o of this.outputs) outputs.set(o, result[o]);
    return { tensors, outputs };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

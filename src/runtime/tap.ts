// The activation tap: a copy of the FP32 model with every tensor that quantization needs
// exposed as an extra graph output, so one run yields all intermediate activations.
// Batches stream through it into the collectors; nothing is kept between batches.

import { DataType, cloneModel, valueInfo, type ModelProto } from '../onnx/index.js';
import { createSession, ort, type SessionOptions } from './session.js';

export type Feeds = Record<string, ort.Tensor>;

export class ActivationTap {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly tensors: string[],
    readonly outputs: string[],
  ) {}

  static async create(model: ModelProto, tensors: string[], opts: SessionOptions = {}): Promise<ActivationTap> {
    const tapped = cloneModel(model);
    const graph = tapped.graph!;
    const outputs = graph.output.map((o) => o.name);
    // Graph inputs are read from the feeds; everything else becomes an extra output.
    const existing = new Set([...outputs, ...graph.input.map((i) => i.name)]);
    for (const t of tensors) if (!existing.has(t)) graph.output.push(valueInfo(t, DataType.FLOAT));
    const session = await createSession(tapped, { optimization: 'basic', memoryArena: false, ...opts }, 'activation tap');
    return new ActivationTap(session, tensors, outputs);
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

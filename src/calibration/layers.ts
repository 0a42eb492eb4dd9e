// Where quantization error is born: for each quantized compute node, the error it makes on
// its own (only that node INT8, the rest FP32) next to the error its output carries in
// the fully quantized model (everything before it INT8 too). A node whose isolated figure
// is good but whose accumulated one is bad inherits its error; one that is bad alone is a
// source. `calibd eval --per-layer` prints it.

import type { ModelProto } from '../onnx/index.js';
import { COMPUTE_OPS, dequantizedName, planQuantization } from '../quant/index.js';
import { compareModels } from './evaluate.js';
import type { SampleSource } from './samples.js';
import { buildVariant, type SelectionInput } from './selection.js';

export interface LayerReport {
  node: string;
  opType: string;
  /** The node's quantized output tensor (after a fused Relu/Clip). */
  tensor: string;
  /** Model output SQNR with only this node INT8, dB. */
  isolatedOutputDb: number;
  /** SQNR of the node's own output with only this node INT8, dB. */
  isolatedTensorDb: number;
  /** SQNR of the node's output in the fully quantized model: the error accumulated so far, dB. */
  accumulatedDb: number;
}

export interface LayerAnalysisOptions {
  threads?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Per-layer report, worst isolated output SQNR first. */
export async function analyseLayers(input: SelectionInput, source: SampleSource, opts: LayerAnalysisOptions = {}): Promise<LayerReport[]> {
  const prepared: ModelProto = input.prepared;
  const fullPlan = planQuantization(prepared, input.options);
  const byName = new Map(prepared.graph!.node.map((n) => [n.name, n]));
  const compute = fullPlan.nodes.filter((n) => COMPUTE_OPS.has(byName.get(n)?.opType ?? ''));
  const carried = new Map(compute.map((n) => [n, fullPlan.outputOf.get(n) ?? null]));
  const common = { threads: opts.threads, batchSize: opts.batchSize ?? 8 };

  const full = buildVariant(input, fullPlan, []);
  const tensors = [...new Set([...carried.values()].filter((t): t is string => t !== null))];
  const accumulated = await compareModels(prepared, full.model, source, {
    ...common,
    perTensor: true,
    int8Tensors: new Map(tensors.map((t) => [t, dequantizedName(t)])),
  });
  const accDb = new Map((accumulated.tensors ?? []).map((t) => [t.name, t.sqnrDb]));

  const reports: LayerReport[] = [];
  let done = 0;
  for (const name of compute) {
    const tensor = carried.get(name);
    const alone = buildVariant(input, fullPlan, fullPlan.nodes.filter((n) => n !== name));
    const pairs = tensor && alone.plan.tensors.includes(tensor) ? new Map([[tensor, dequantizedName(tensor)]]) : new Map<string, string>();
    const r = await compareModels(prepared, alone.model, source, { ...common, perTensor: pairs.size > 0, int8Tensors: pairs });
    reports.push({
      node: name,
      opType: byName.get(name)!.opType,
      tensor: tensor ?? byName.get(name)!.output[0],
      isolatedOutputDb: r.sqnrDb,
      isolatedTensorDb: r.tensors?.[0]?.sqnrDb ?? r.sqnrDb,
      accumulatedDb: tensor ? (accDb.get(tensor) ?? accumulated.sqnrDb) : accumulated.sqnrDb,
    });
    opts.onProgress?.(++done, compute.length);
  }
  return reports.sort((a, b) => a.isolatedOutputDb - b.isolatedOutputDb);
}

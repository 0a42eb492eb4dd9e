// Per-node kernel time from ORT's profiler, attributed back to the nodes of the graph
// calibd quantizes (the 'basic'-prepared FP32 graph).
//
// ORT renames what it rewrites: NCHWc convs are named after their output tensor
// (`relu1_out_nchwc`), QDQ fusions after the original node plus a token
// (`conv1_token_1`), fused Gemms `fused fc1`, duplicated DQs `<name>/duplicated`.
// Q/DQ kernels keep the names calibd gave them (quant/naming.ts). Each kernel
// is mapped to a node of the prepared graph; an activation ORT fused into a compute node
// (Relu, Clip, HardSigmoid, …) counts for that compute node; a Q/DQ hop counts for the
// quantized unit on its side of the boundary; the rest (ReorderInput/Output, Transpose to
// NHWC and back, unmatched Q/DQ) is reported as layout/Q-DQ overhead.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphIndex, type ModelProto, type NodeProto } from '../onnx/index.js';
import { COMPUTE_OPS, FP32_FUSED_ACTIVATIONS, parseQdqNodeName } from '../quant/index.js';
import { createSession, ort } from './session.js';

export interface KernelTime {
  /** ORT's node name in the optimised graph. */
  name: string;
  /** ORT's kernel (op) type, e.g. QLinearConv, Conv, ReorderOutput. */
  opType: string;
  /** Median kernel time per run, µs. */
  us: number;
}

export interface ProfileOptions {
  runs?: number;
  /** Runs at the start not counted (default 3). */
  warmup?: number;
  threads?: number;
}

interface TraceEvent {
  cat?: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

/**
 * Parses an ORT JSON trace: per-kernel median time per run over the runs after `warmup`.
 * Kernels are assigned to runs by the `model_run` session events that enclose them.
 */
export function parseProfileTrace(events: TraceEvent[], warmup = 0): KernelTime[] {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const counted = runs.slice(Math.min(warmup, Math.max(0, runs.length - 1)));
  const perRun = counted.map(() => new Map<string, number>());
  const opOf = new Map<string, string>();
  const order: string[] = [];
  for (const k of kernels) {
    const name = k.name.slice(0, -'_kernel_time'.length);
    if (!opOf.has(name)) {
      opOf.set(name, k.args?.op_name ?? '');
      order.push(name);
    }
    const r = counted.findIndex((run) => k.ts >= run.ts && k.ts <= run.ts + run.dur);
    if (r < 0) continue;
    perRun[r].set(name, (perRun[r].get(name) ?? 0) + k.dur);
  }
  return order.map((name) => {
    const xs = perRun.map((m) => m.get(name) ?? 0).sort((a, b) => a - b);
    return { name, opType: opOf.get(name)!, us: xs.length ? xs[Math.floor(xs.length / 2)] : 0 };
  });
}

/** Runs `model` `runs` times under ORT's profiler and returns per-kernel times. */
export async function profileModel(model: ModelProto | Uint8Array, feeds: Record<string, ort.Tensor>, opts: ProfileOptions = {}): Promise<KernelTime[]> {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-prof-'));
  try {
    const session = await createSession(model, { threads: opts.threads ?? 1, profileFilePrefix: join(dir, 'trace') });
    const warmup = opts.warmup ?? 3;
    try {
      for (let i = 0; i < (opts.runs ?? 30) + warmup; i++) await session.run(feeds);
      // onnxruntime-node's endProfiling() returns nothing: the trace is the one file in `dir`.
      session.endProfiling();
    } finally {
      await session.release();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) return [];
    return parseProfileTrace(JSON.parse(readFileSync(join(dir, file), 'utf8')) as TraceEvent[], warmup);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ORT marks a DequantizeLinear it copied for each consumer (one DQ per QDQ unit). */
const DUPLICATED = /\/duplicated$/;

/** Whether a kernel is one of calibd's activation QuantizeLinear/DequantizeLinear hops. */
export function isActivationHop(kernel: string): boolean {
  const qdq = parseQdqNodeName(kernel.replace(DUPLICATED, ''));
  return qdq !== null && qdq.kind !== 'output';
}

export interface Attribution {
  /** Kernel time per unit (a node name of `units`), µs per run. */
  perUnit: Map<string, number>;
  /** Q/DQ hops and layout changes (Reorder*, Transpose) that belong to no unit. */
  overheadUs: number;
  /** Nodes that are not units (computed alike in both models), µs. */
  otherUs: number;
  totalUs: number;
  /** Kernel name → unit (or '' for overhead, '~' for other), for reports and tests. */
  mapping: Map<string, string>;
}

/**
 * Maps ORT kernels onto the prepared graph. `units` are the nodes reported one by one
 * (calibd's quantizable nodes); `int8Units` those quantized in the profiled model, which
 * take the Q/DQ hops at their boundaries.
 */
export function attributeKernelTimes(prepared: ModelProto, kernels: KernelTime[], units: Iterable<string>, int8Units: Iterable<string> = []): Attribution {
  const graph = prepared.graph!;
  const index = new GraphIndex(graph);
  const unitSet = new Set(units);
  const quantized = new Set(int8Units);
  const byName = new Map<string, NodeProto>();
  for (const n of graph.node) if (n.name) byName.set(n.name, n);

  // A node that is no unit but was fused into the compute node that feeds it.
  const owner = (node: NodeProto): string | null => {
    if (unitSet.has(node.name)) return node.name;
    if (FP32_FUSED_ACTIVATIONS.has(node.opType)) {
      const src = index.producer.get(node.input[0]);
      if (src && COMPUTE_OPS.has(src.opType) && unitSet.has(src.name)) return src.name;
    }
    return null;
  };
  const hopOwner = (tensor: string, kind: 'Q' | 'DQ'): string | null => {
    // A Q feeds the quantized consumer; a DQ drains the quantized producer.
    const producer = index.producer.get(tensor);
    const consumers = index.consumersOf(tensor);
    const first = (nodes: (NodeProto | undefined)[]) => nodes.find((n) => n && quantized.has(n.name))?.name ?? null;
    return kind === 'Q' ? (first(consumers) ?? first([producer])) : (first([producer]) ?? first(consumers));
  };

  const perUnit = new Map<string, number>();
  const mapping = new Map<string, string>();
  let overheadUs = 0;
  let otherUs = 0;
  let totalUs = 0;
  for (const k of kernels) {
    totalUs += k.us;
    let base = k.name.replace(DUPLICATED, '').replace(/^fused /, '').replace(/_token_\d+$/, '');
    let unit: string | null = null;
    let hop = false;
    const qdq = parseQdqNodeName(base);
    if (qdq) {
      hop = true;
      unit = hopOwner(qdq.tensor, qdq.kind === 'quantize' ? 'Q' : 'DQ');
    } else {
      if (base.endsWith('_nchwc')) base = base.slice(0, -'_nchwc'.length);
      const node = byName.get(base) ?? index.producer.get(base);
      if (node) {
        unit = owner(node);
        if (!unit) {
          otherUs += k.us;
          mapping.set(k.name, '~');
          continue;
        }
      } else hop = true;
    }
    if (unit) {
      perUnit.set(unit, (perUnit.get(unit) ?? 0) + k.us);
      mapping.set(k.name, unit);
    } else if (hop) {
      overheadUs += k.us;
      mapping.set(k.name, '');
    }
  }
  return { perUnit, overheadUs, otherUs, totalUs, mapping };
}

// Read-only queries over an ONNX graph: who produces and who consumes a tensor, which
// tensors are constant, attribute access. Rewrites build a fresh index after changing
// the graph rather than patching this one.

import { create } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType as AT,
  NodeProtoSchema,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from 'onnx-buf';
import { tensorToNumbers } from './tensor.js';

export type { GraphProto, NodeProto } from 'onnx-buf';

export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly graphInputs: string[];
  readonly graphOutputs: Set<string>;

  constructor(readonly graph: GraphProto) {
    for (const t of graph.initializer) this.initializers.set(t.name, t);
    for (const node of graph.node) {
      for (const out of node.output) if (out) this.producer.set(out, node);
      for (const inp of node.input) {
        if (!inp) continue;
        const list = this.consumers.get(inp);
        if (list) list.push(node);
        else this.consumers.set(inp, [node]);
      }
    }
    // Since IR 4 initializers need not be listed as inputs; older models list them anyway.
    this.graphInputs = graph.input.map((v) => v.name).filter((n) => !this.initializers.has(n));
    this.graphOutputs = new Set(graph.output.map((v) => v.name));
  }

  consumersOf(tensor: string): NodeProto[] {
    return this.consumers.get(tensor) ?? [];
  }

  isConstant(tensor: string): boolean {
    return this.initializers.has(tensor);
  }

  /** A float activation: produced at run time (graph input or node output), not a weight. */
  isActivation(tensor: string): boolean {
    return !this.initializers.has(tensor) && (this.producer.has(tensor) || this.graphInputs.includes(tensor));
  }
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? a.ints.map(Number) : undefined;
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = attr(node, name);
  return a ? new TextDecoder().decode(a.s) : undefined;
}

export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return attr(node, name)?.t;
}

export type AttrValue = number | number[] | string | TensorProto | { float: number } | { floats: number[] };

/** Builds an attribute: integers as ints, `{float}` / `{floats}` to force float types. */
export function makeAttr(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'number') return create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(Math.trunc(value)) });
  if (typeof value === 'string') return create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(value) });
  if (Array.isArray(value)) return create(AttributeProtoSchema, { name, type: AT.INTS, ints: value.map((v) => BigInt(v)) });
  if ('float' in value) return create(AttributeProtoSchema, { name, type: AT.FLOAT, f: value.float });
  if ('floats' in value) return create(AttributeProtoSchema, { name, type: AT.FLOATS, floats: value.floats });
  return create(AttributeProtoSchema, { name, type: AT.TENSOR, t: value });
}

export function makeNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: Record<string, AttrValue> = {},
  domain = '',
): NodeProto {
  return create(NodeProtoSchema, {
    opType,
    input: inputs,
    output: outputs,
    name,
    domain,
    attribute: Object.entries(attrs).map(([k, v]) => makeAttr(k, v)),
  });
}

/** Values of a constant tensor, whether held as an initializer or a Constant node. */
export function constantValues(index: GraphIndex, tensor: string): Float64Array | undefined {
  const init = index.initializers.get(tensor);
  if (init) return tensorToNumbers(init);
  const node = index.producer.get(tensor);
  if (node?.opType === 'Constant') {
    const t = attrTensor(node, 'value');
    if (t) return tensorToNumbers(t);
  }
  return undefined;
}

/**
 * A Clip's bounds: attributes up to opset 10, optional constant inputs from 11 (a missing
 * bound is unbounded); null when a bound is computed at run time.
 */
export function clipBounds(index: GraphIndex, node: NodeProto): { min: number; max: number } | null {
  if (node.attribute.some((a) => a.name === 'min' || a.name === 'max')) return { min: attrFloat(node, 'min', -Infinity), max: attrFloat(node, 'max', Infinity) };
  const fromInput = (k: number, fallback: number): number | null => {
    if (!node.input[k]) return fallback;
    const v = constantValues(index, node.input[k]);
    return v && v.length === 1 ? v[0] : null;
  };
  const min = fromInput(1, -Infinity);
  const max = fromInput(2, Infinity);
  return min === null || max === null ? null : { min, max };
}

/** True when a Conv-like node adds no padding, so every window reads real values. */
export function padsNothing(node: NodeProto): boolean {
  const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET';
  return (autoPad === 'NOTSET' || autoPad === 'VALID') && (attrInts(node, 'pads') ?? []).every((p) => p === 0);
}

/**
 * `graph` cut down to what computes `outputs` (which become its only outputs): ONNX Runtime
 * runs every node of a session whatever is fetched, so a model measured at one tensor would
 * otherwise pay for the rest of the network. Inputs stay, so the same feeds still fit.
 * Graphs with subgraph attributes (If, Loop) are kept whole: their outer-scope reads are
 * not listed as inputs.
 */
export function pruneToOutputs(graph: GraphProto, outputs: readonly string[]): GraphProto {
  const kept = graph.output.filter((o) => outputs.includes(o.name));
  if (graph.node.some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs?.length ?? 0) > 0))) return { ...graph, output: kept };
  const index = new GraphIndex(graph);
  const needed = new Set<string>(outputs);
  const nodes = new Set<NodeProto>();
  const stack = [...outputs];
  while (stack.length) {
    const node = index.producer.get(stack.pop()!);
    if (!node || nodes.has(node)) continue;
    nodes.add(node);
    for (const i of node.input) {
      if (!i || needed.has(i)) continue;
      needed.add(i);
      stack.push(i);
    }
  }
  return {
    ...graph,
    node: graph.node.filter((n) => nodes.has(n)),
    initializer: graph.initializer.filter((t) => needed.has(t.name)),
    valueInfo: (graph.valueInfo ?? []).filter((v) => needed.has(v.name)),
    output: kept,
  };
}

/** Nodes in an order where every node comes after the producers of its inputs. */
export function topologicalOrder(graph: GraphProto): NodeProto[] {
  const index = new GraphIndex(graph);
  const ready = new Set<string>([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name), '']);
  const pending = new Map<NodeProto, number>();
  const queue: NodeProto[] = [];
  for (const node of graph.node) {
    const missing = node.input.filter((i) => !ready.has(i) && index.producer.has(i)).length;
    pending.set(node, missing);
    if (missing === 0) queue.push(node);
  }
  const order: NodeProto[] = [];
  while (queue.length) {
    const node = queue.shift()!;
    order.push(node);
    for (const out of node.output) {
      for (const c of index.consumersOf(out)) {
        const left = (pending.get(c) ?? 0) - c.input.filter((i) => i === out).length;
        pending.set(c, left);
        if (left === 0) queue.push(c);
      }
    }
  }
  // Nodes in cycles or reading undefined tensors keep their original relative order at the end.
  if (order.length < graph.node.length) for (const n of graph.node) if (!order.includes(n)) order.push(n);
  return order;
}

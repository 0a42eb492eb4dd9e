// Lifts older models to the opsets an INT8 graph needs, rewriting each op whose schema
// changes on the way so that it means the same thing.
//
// To opset 10, the first with the integer kernels an INT8 graph fuses into (QLinearConv,
// QLinearMatMul). Opset 10 keeps every opset-9 schema but a few:
//  - Slice: starts/ends/axes move from attributes to int64 inputs;
//  - TopK: k moves from an attribute to an int64 input;
//  - Upsample: deprecated; Resize at opset 10 takes the same inputs and modes;
//  - Dropout: an identity at inference (its mask output changed type), so it becomes one.
// Anything else whose schema changed is refused by name (none is known at 9 → 10).
//
// To opset 13, the first whose ai.onnx DequantizeLinear takes an axis (per-channel
// weights, as TensorRT's explicit quantization wants). Which schemas change between 10 and
// 13 is taken from ONNX's own version converter (onnx/version_converter/convert.h): it
// registers a plain "compatible" adapter (types added, negative axes allowed, inputs made
// optional) for every op changed in 11, 12 and 13 except these, rewritten here:
//  - at 11: Clip's min/max and Pad's pads/value move from attributes to inputs;
//  - at 12: Dropout's ratio moves to an input: it becomes an identity, as above;
//  - at 13: Squeeze, Unsqueeze and ReduceSum take axes, Split its split, as an input;
//    Softmax and LogSoftmax (and Hardmax, whose opset-13 definition changed the same way)
//    work along one axis instead of over the input flattened to 2-D from the axis on:
//    they become Flatten → op → Reshape back, or stay one node when the axis is the last.
// Refused by name: Resize from opset 10 (its coordinate mapping changed at 11), Scatter
// (removed at 11), and If/Loop/Scan, whose subgraphs would need lifting too.

import { OptionError } from '../common/index.js';
import { DataType, makeTensor } from './tensor.js';
import { GraphIndex, attr, attrFloat, attrInt, makeNode, type GraphProto, type NodeProto } from './graph.js';
import { cloneModel, onnxOpset, type ModelProto } from './model.js';

export const LIFT_TARGET_OPSET = 10;

const isOnnxDomain = (n: NodeProto) => n.domain === '' || n.domain === 'ai.onnx';

export interface LiftResult {
  model: ModelProto;
  /** Opset the model had. */
  from: number;
  /** Nodes rewritten on the way, by op type. */
  rewritten: Record<string, number>;
}

/** `model` at opset ≥ 10: itself when already there, else a lifted copy. */
export function liftToOpset10(model: ModelProto): LiftResult {
  const from = onnxOpset(model);
  if (from >= LIFT_TARGET_OPSET) return { model, from, rewritten: {} };
  const out = cloneModel(model);
  const graph = out.graph!;
  const rewritten: Record<string, number> = {};
  const count = (op: string) => {
    rewritten[op] = (rewritten[op] ?? 0) + 1;
  };
  let serial = 0;
  // Kept as bigint: exporters write "to the end" as INT64_MAX, which a double cannot hold.
  const int64Input = (node: NodeProto, what: string, values: readonly bigint[]): string => {
    const name = `${node.name || node.opType}__${what}__opset10_${serial++}`;
    graph.initializer.push(makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values)));
    return name;
  };
  const ints = (node: NodeProto, name: string): bigint[] | undefined => attr(node, name)?.ints;
  graph.node = graph.node.map((node) => {
    if (!isOnnxDomain(node)) return node;
    switch (node.opType) {
      case 'Slice': {
        const starts = ints(node, 'starts') ?? [];
        const ends = ints(node, 'ends') ?? [];
        const axes = ints(node, 'axes');
        const inputs = [node.input[0], int64Input(node, 'starts', starts), int64Input(node, 'ends', ends)];
        if (axes) inputs.push(int64Input(node, 'axes', axes));
        count('Slice');
        return makeNode('Slice', inputs, [...node.output], node.name);
      }
      case 'TopK': {
        const k = attrInt(node, 'k', -1);
        const axis = attrInt(node, 'axis', -1);
        count('TopK');
        return makeNode('TopK', [node.input[0], int64Input(node, 'k', [BigInt(k)])], [...node.output], node.name, { axis });
      }
      case 'Upsample': {
        count('Upsample');
        const resize = makeNode('Resize', [...node.input], [...node.output], node.name);
        resize.attribute = node.attribute.filter((a) => a.name === 'mode');
        return resize;
      }
      case 'Dropout':
        count('Dropout');
        return dropoutToIdentity(graph, node, from, LIFT_TARGET_OPSET);
      default:
        return node;
    }
  });
  for (const o of out.opsetImport) if (o.domain === '' || o.domain === 'ai.onnx') o.version = BigInt(LIFT_TARGET_OPSET);
  return { model: out, from, rewritten };
}

/** A Dropout as the identity it is at inference; refused when its mask is read (its type changes). */
function dropoutToIdentity(graph: GraphProto, node: NodeProto, from: number, to: number): NodeProto {
  const mask = node.output[1] ?? '';
  const used = mask !== '' && (new GraphIndex(graph).consumersOf(mask).length > 0 || graph.output.some((o) => o.name === mask));
  if (used) {
    throw new OptionError(`opset ${from} model: Dropout '${node.name}' has its mask read, which changes at opset ${to}`, {
      value: node.name,
      hint: `export the model for inference (no Dropout mask output) or at opset ${to} or later`,
    });
  }
  return makeNode('Identity', [node.input[0]], [node.output[0]], node.name);
}

/** The first opset whose ai.onnx DequantizeLinear has an axis: per-channel Q/DQ in the standard domain. */
export const QDQ_AXIS_OPSET = 13;

/** Ops with subgraphs: lifting them would mean lifting their bodies too. */
const SUBGRAPH_OPS = new Set(['If', 'Loop', 'Scan']);
const AXIS_OPS = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);
const AXES_TO_INPUT = new Set(['Squeeze', 'Unsqueeze', 'ReduceSum']);

/** `model` at opset ≥ 13: itself when already there, else a lifted copy (through opset 10 first). */
export function liftToOpset13(model: ModelProto): LiftResult {
  const from = onnxOpset(model);
  if (from >= QDQ_AXIS_OPSET) return { model, from, rewritten: {} };
  const ten = liftToOpset10(model);
  const out = ten.model === model ? cloneModel(model) : ten.model;
  const graph = out.graph!;
  const at = Math.max(from, LIFT_TARGET_OPSET);
  const rewritten: Record<string, number> = { ...ten.rewritten };
  let serial = 0;
  const fresh = (node: NodeProto, what: string) => `${node.name || node.opType}__${what}__opset13_${serial++}`;
  const constant = (node: NodeProto, what: string, dataType: DataType, dims: number[], values: ArrayLike<number> | BigInt64Array): string => {
    const name = fresh(node, what);
    graph.initializer.push(makeTensor(name, dataType, dims, values));
    return name;
  };
  const refuse = (node: NodeProto, why: string): never => {
    throw new OptionError(`opset ${from} model: ${node.opType} '${node.name}' ${why}, which calibd does not rewrite for opset ${QDQ_AXIS_OPSET}`, {
      value: node.name || node.opType,
      hint: `export the model at opset ${QDQ_AXIS_OPSET} or later`,
    });
  };
  const nodes: NodeProto[] = [];
  for (const node of graph.node) {
    if (!isOnnxDomain(node)) {
      nodes.push(node);
      continue;
    }
    const done = nodes.length;
    if (SUBGRAPH_OPS.has(node.opType)) refuse(node, 'holds subgraphs');
    else if (node.opType === 'Scatter') refuse(node, 'was removed at opset 11');
    else if (node.opType === 'Resize' && at < 11) refuse(node, 'maps coordinates differently from opset 11 on');
    else if (node.opType === 'Clip' && at < 11) {
      const inputs = [node.input[0]];
      const bound = (name: 'min' | 'max') => (attr(node, name) ? constant(node, name, DataType.FLOAT, [], [attrFloat(node, name, 0)]) : '');
      inputs.push(bound('min'), bound('max'));
      while (inputs[inputs.length - 1] === '') inputs.pop();
      nodes.push(makeNode('Clip', inputs, [...node.output], node.name));
    } else if (node.opType === 'Pad' && at < 11) {
      const pads = attr(node, 'pads')?.ints ?? [];
      const mode = attr(node, 'mode');
      const pad = makeNode('Pad', [node.input[0], constant(node, 'pads', DataType.INT64, [pads.length], BigInt64Array.from(pads)), constant(node, 'value', DataType.FLOAT, [], [attrFloat(node, 'value', 0)])], [...node.output], node.name);
      if (mode) pad.attribute.push(mode);
      nodes.push(pad);
    } else if (node.opType === 'Dropout' && at < 12) {
      nodes.push(dropoutToIdentity(graph, node, from, 12));
    } else if (AXES_TO_INPUT.has(node.opType) || node.opType === 'Split') {
      const moved = node.opType === 'Split' ? 'split' : 'axes';
      const values = attr(node, moved)?.ints;
      if (!values) {
        nodes.push(node);
        continue;
      }
      const lifted = makeNode(node.opType, [...node.input, constant(node, moved, DataType.INT64, [values.length], BigInt64Array.from(values))], [...node.output], node.name);
      lifted.attribute = node.attribute.filter((a) => a.name !== moved);
      nodes.push(lifted);
    } else if (AXIS_OPS.has(node.opType)) {
      nodes.push(...alongOneAxis(node, fresh));
    } else {
      nodes.push(node);
    }
    if (nodes.length !== done + 1 || nodes[done] !== node) rewritten[node.opType] = (rewritten[node.opType] ?? 0) + 1;
  }
  graph.node = nodes;
  for (const o of out.opsetImport) if (o.domain === '' || o.domain === 'ai.onnx') o.version = BigInt(QDQ_AXIS_OPSET);
  return { model: out, from, rewritten };
}

/**
 * Softmax/LogSoftmax/Hardmax below opset 13 work on the input seen as 2-D, [d0·…·d(a-1),
 * da·…·dn]. With the last axis that is the same as opset 13's single axis; otherwise
 * Flatten(axis) gives that 2-D view, the op runs along its last axis, and Reshape to the
 * input's shape restores the layout, under the original output name.
 */
function alongOneAxis(node: NodeProto, fresh: (n: NodeProto, what: string) => string): NodeProto[] {
  const axis = attrInt(node, 'axis', 1);
  const x = node.input[0];
  if (axis === -1) return [makeNode(node.opType, [x], [...node.output], node.name, { axis: -1 })];
  const shape = fresh(node, 'shape');
  const flat = fresh(node, 'flat');
  const flatOut = fresh(node, '2d');
  return [
    makeNode('Shape', [x], [shape], `${shape}__node`),
    makeNode('Flatten', [x], [flat], `${flat}__node`, { axis }),
    makeNode(node.opType, [flat], [flatOut], node.name, { axis: -1 }),
    makeNode('Reshape', [flatOut, shape], [node.output[0]], `${flatOut}__reshape`),
  ];
}

// Lifts opset-9 models to opset 10, the first opset with the integer kernels an INT8 graph
// fuses into (QLinearConv, QLinearMatMul). Opset 10 keeps every opset-9 schema but a few,
// and each of those is rewritten to mean the same thing:
//  - Slice: starts/ends/axes move from attributes to int64 inputs;
//  - TopK: k moves from an attribute to an int64 input;
//  - Upsample: deprecated; Resize at opset 10 takes the same inputs and modes;
//  - Dropout: an identity at inference (its mask output changed type), so it becomes one.
// Anything else whose schema changed is refused by name (none is known at 9 → 10).

import { OptionError } from '../common/index.js';
import { DataType, makeTensor } from './tensor.js';
import { GraphIndex, attr, attrInt, makeNode, type NodeProto } from './graph.js';
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
      case 'Dropout': {
        count('Dropout');
        const used = new GraphIndex(graph).consumersOf(node.output[1] ?? '').length > 0 || (node.output[1] && graph.output.some((o) => o.name === node.output[1]));
        if (used) {
          throw new OptionError(`opset ${from} model: Dropout '${node.name}' has its mask read, which changes type at opset ${LIFT_TARGET_OPSET}`, {
            value: node.name,
            hint: 'export the model for inference (no Dropout mask output) or at opset 10 or later',
          });
        }
        return makeNode('Identity', [node.input[0]], [node.output[0]], node.name);
      }
      default:
        return node;
    }
  });
  for (const o of out.opsetImport) if (o.domain === '' || o.domain === 'ai.onnx') o.version = BigInt(LIFT_TARGET_OPSET);
  return { model: out, from, rewritten };
}

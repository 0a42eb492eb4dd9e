// A small graph builder: enough to write test models and export the demo CNN.

import { create } from '@bufbuild/protobuf';
import {
  GraphProtoSchema,
  ModelProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProto_DataType as DT,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  ValueInfoProtoSchema,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { makeNode, type AttrValue } from './graph.js';
import { floatTensor } from './tensor.js';

/** A dimension: a fixed size, or a name for a dynamic one (e.g. 'N'). */
export type Dim = number | string;

export function valueInfo(name: string, elemType: number = DT.FLOAT, shape?: readonly Dim[]): ValueInfoProto {
  const tensorType = create(TypeProto_TensorSchema, {
    elemType,
    shape: shape
      ? create(TensorShapeProtoSchema, {
          dim: shape.map((d) =>
            create(TensorShapeProto_DimensionSchema, {
              value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
            }),
          ),
        })
      : undefined,
  });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: tensorType } }),
  });
}

export class ModelBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inits: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly opset = 13, private readonly graphName = 'graph') {}

  input(name: string, shape: readonly Dim[], elemType: number = DT.FLOAT): string {
    this.inputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  output(name: string, shape?: readonly Dim[], elemType: number = DT.FLOAT): string {
    this.outputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  initializer(name: string, dims: readonly number[], values: ArrayLike<number>): string {
    this.inits.push(floatTensor(name, dims, values));
    return name;
  }

  tensor(t: TensorProto): string {
    this.inits.push(t);
    return t.name;
  }

  /** Adds a node; returns its output names (auto-named `<op>_<n>` unless given). */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: string[] | number; name?: string; domain?: string } = {}): string[] {
    const id = this.counter++;
    const name = opts.name ?? `${opType.toLowerCase()}_${id}`;
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => (i === 0 ? `${name}_out` : `${name}_out${i}`));
    this.nodes.push(makeNode(opType, inputs, outs, name, attrs, opts.domain ?? ''));
    return outs;
  }

  /** Single-output shorthand. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name?: string): string {
    return this.node(opType, inputs, attrs, name ? { name } : {})[0];
  }

  build(): ModelProto {
    return create(ModelProtoSchema, {
      irVersion: 8n,
      producerName: 'calibd',
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(this.opset) })],
      graph: create(GraphProtoSchema, {
        name: this.graphName,
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
      }),
    });
  }
}

// Reading and writing ONNX model files. The protobuf schema comes from `onnx-buf`
// (ONNX's own onnx.proto compiled for @bufbuild/protobuf), so unknown fields survive a
// load/save round trip.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, StringStringEntryProtoSchema as StringStringEntry, TensorProto_DataLocation, type ModelProto } from 'onnx-buf';
import { readFileSync, statSync } from 'node:fs';
import { ModelError, writeFileAtomic } from '../common/index.js';

export type { ModelProto } from 'onnx-buf';

/** Protobuf messages cannot exceed 2 GiB; such models keep weights as external data. */
export const MAX_MODEL_BYTES = 2 ** 31 - 1;

export function readModel(path: string): ModelProto {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    throw new ModelError(`cannot read model ${path}`, {
      value: path,
      hint: 'check the path and that the file is readable',
      cause: err,
    });
  }
  if (size > MAX_MODEL_BYTES) {
    throw new ModelError(`model ${path} is ${size} bytes, over the 2 GiB protobuf limit`, {
      value: path,
      hint: 'calibd handles single-file models under 2 GiB; export a smaller model',
    });
  }
  return parseModel(readFileSync(path), path);
}

export function parseModel(bytes: Uint8Array, source = '<bytes>'): ModelProto {
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (err) {
    throw new ModelError(`${source} is not an ONNX model (protobuf parse failed)`, {
      value: source,
      hint: 'pass an .onnx file exported by a framework or ONNX Runtime',
      cause: err,
    });
  }
  if (!model.graph || model.graph.node.length === 0) {
    throw new ModelError(`${source} has no graph nodes`, {
      value: source,
      hint: 'pass an .onnx file exported by a framework or ONNX Runtime',
    });
  }
  const external = model.graph.initializer.find(
    (t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0,
  );
  if (external) {
    throw new ModelError(`${source} keeps tensor '${external.name}' as external data`, {
      value: source,
      hint: 'calibd needs weights inside the .onnx file; re-export without external data (models under 2 GiB)',
    });
  }
  return model;
}

export function serializeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

/** Saves with a temporary name, fsync and rename: a power cut never leaves half a model. */
export function writeModel(model: ModelProto, path: string): void {
  writeFileAtomic(path, serializeModel(model));
}

/** A deep copy, so rewrites never alias the caller's model. */
export function cloneModel(model: ModelProto): ModelProto {
  return fromBinary(ModelProtoSchema, toBinary(ModelProtoSchema, model));
}

export function emptyModel(): ModelProto {
  return create(ModelProtoSchema);
}

/** Opset version of the default ONNX domain. */
export function onnxOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return entry ? Number(entry.version) : 0;
}

export function getMetadata(model: ModelProto, key: string): string | undefined {
  return model.metadataProps.find((p) => p.key === key)?.value;
}

export function setMetadata(model: ModelProto, key: string, value: string): void {
  const existing = model.metadataProps.find((p) => p.key === key);
  if (existing) existing.value = value;
  else model.metadataProps.push(create(StringStringEntry, { key, value }));
}



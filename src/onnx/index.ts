// ONNX model I/O, tensor conversion, graph queries and a small builder.
export {
  readModel, parseModel, serializeModel, writeModel, cloneModel, emptyModel,
  onnxOpset, getMetadata, setMetadata, MAX_MODEL_BYTES, type ModelProto,
} from './model.js';
export {
  DataType, dimsOf, elementCount, tensorToNumbers, tensorToFloat32, makeTensor, floatTensor, byteSize,
  type TensorProto, type NumericArray,
} from './tensor.js';
export {
  GraphIndex, attr, attrInt, attrFloat, attrInts, attrString, attrTensor, makeAttr, makeNode,
  constantValues, topologicalOrder, pruneToOutputs, clipBounds, padsNothing, type AttrValue, type GraphProto, type NodeProto,
} from './graph.js';
export { ModelBuilder, valueInfo, type Dim } from './builder.js';
export { foldConvAffine, channelValues, type FoldResult } from './fold.js';
export { foldAffineIntoConv, forEachConvWeight } from './fold.js';
export { fuseHardSwish, writtenOutHardSwish, type WrittenOutHardSwish } from './hardswish.js';
export { liftToOpset10, liftToOpset13, LIFT_TARGET_OPSET, QDQ_AXIS_OPSET, type LiftResult } from './opset.js';

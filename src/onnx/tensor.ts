// Conversions between ONNX TensorProto and typed arrays.

import { create } from '@bufbuild/protobuf';
import { TensorProtoSchema, TensorProto_DataType as DT, type TensorProto } from 'onnx-buf';
import { ModelError } from '../common/index.js';

export { TensorProto_DataType as DataType } from 'onnx-buf';
export type { TensorProto } from 'onnx-buf';

export type NumericArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

export function dimsOf(t: TensorProto): number[] {
  return t.dims.map(Number);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Reads any float/int tensor as float64 values (small tensors: weights, biases, constants). */
export function tensorToNumbers(t: TensorProto): Float64Array {
  const n = elementCount(dimsOf(t));
  const out = new Float64Array(n);
  const raw = t.rawData;
  if (raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const size = byteSize(t.dataType, t.name);
    if (raw.length !== n * size) {
      throw new ModelError(`tensor '${t.name}' has ${raw.length} raw bytes, expected ${n * size}`, {
        value: t.name,
        hint: 'the model file is corrupt; re-export it',
      });
    }
    for (let i = 0; i < n; i++) out[i] = readScalar(view, i * size, t.dataType);
    return out;
  }
  const src: ArrayLike<number | bigint> =
    t.dataType === DT.FLOAT ? t.floatData
    : t.dataType === DT.DOUBLE ? t.doubleData
    : t.dataType === DT.INT64 ? t.int64Data
    : t.dataType === DT.UINT64 ? t.uint64Data
    : t.int32Data; // int32, int16, int8, uint8, uint16, bool all use int32_data
  if (src.length !== n && !(n === 1 && src.length === 1)) {
    if (src.length === 0 && n === 0) return out;
    throw new ModelError(`tensor '${t.name}' holds ${src.length} values, expected ${n}`, {
      value: t.name,
      hint: 'the model file is corrupt; re-export it',
    });
  }
  for (let i = 0; i < n; i++) out[i] = Number(src[i]);
  return out;
}

export function tensorToFloat32(t: TensorProto): Float32Array {
  if (t.dataType === DT.FLOAT && t.rawData.length > 0) {
    // Copy to an aligned buffer: raw_data may start at any byte offset inside the file.
    const copy = new Uint8Array(t.rawData);
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(tensorToNumbers(t));
}

export function makeTensor(name: string, dataType: DT, dims: readonly number[], values: ArrayLike<number> | BigInt64Array): TensorProto {
  const n = elementCount(dims);
  if (values.length !== n) {
    throw new ModelError(`tensor '${name}': ${values.length} values for dims [${dims.join(',')}]`, { value: name });
  }
  const size = byteSize(dataType, name);
  const raw = new Uint8Array(n * size);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < n; i++) writeScalar(view, i * size, dataType, values[i] as number | bigint);
  return create(TensorProtoSchema, { name, dataType, dims: dims.map((d) => BigInt(d)), rawData: raw });
}

export function floatTensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  return makeTensor(name, DT.FLOAT, dims, values);
}

export function byteSize(dataType: number, name = ''): number {
  switch (dataType) {
    case DT.FLOAT: case DT.INT32: case DT.UINT32: return 4;
    case DT.DOUBLE: case DT.INT64: case DT.UINT64: return 8;
    case DT.INT8: case DT.UINT8: case DT.BOOL: return 1;
    case DT.INT16: case DT.UINT16: case DT.FLOAT16: return 2;
    default:
      throw new ModelError(`tensor '${name}' has data type ${dataType}, which calibd does not read`, {
        value: dataType,
        hint: 'calibd reads float32/float64 and integer tensors',
      });
  }
}

function readScalar(v: DataView, off: number, dt: number): number {
  switch (dt) {
    case DT.FLOAT: return v.getFloat32(off, true);
    case DT.DOUBLE: return v.getFloat64(off, true);
    case DT.INT64: return Number(v.getBigInt64(off, true));
    case DT.UINT64: return Number(v.getBigUint64(off, true));
    case DT.INT32: return v.getInt32(off, true);
    case DT.UINT32: return v.getUint32(off, true);
    case DT.INT16: return v.getInt16(off, true);
    case DT.UINT16: return v.getUint16(off, true);
    case DT.INT8: return v.getInt8(off);
    case DT.UINT8: case DT.BOOL: return v.getUint8(off);
    case DT.FLOAT16: return halfToFloat(v.getUint16(off, true));
    default: throw new ModelError(`unsupported data type ${dt}`, { value: dt });
  }
}

function writeScalar(v: DataView, off: number, dt: number, x: number | bigint): void {
  switch (dt) {
    case DT.FLOAT: v.setFloat32(off, Number(x), true); break;
    case DT.DOUBLE: v.setFloat64(off, Number(x), true); break;
    case DT.INT64: v.setBigInt64(off, BigInt(x), true); break;
    case DT.INT32: v.setInt32(off, Number(x), true); break;
    case DT.INT8: v.setInt8(off, Number(x)); break;
    case DT.UINT8: case DT.BOOL: v.setUint8(off, Number(x)); break;
    case DT.INT16: v.setInt16(off, Number(x), true); break;
    case DT.UINT16: v.setUint16(off, Number(x), true); break;
    default: throw new ModelError(`cannot write data type ${dt}`, { value: dt });
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

// NumPy .npy files: the simplest way to hand tensors between calibd and Python tooling.
// Layout: the magic "\x93NUMPY", a version (1.0 with a 2-byte header length, 2.0/3.0 with a
// 4-byte one), a Python dict literal giving dtype, memory order and shape, then the raw
// little-endian data. Only C-order, little-endian numeric arrays are handled.

import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { writeFileAtomic } from './atomic-file.js';
import { DataError } from './errors.js';

export type NpyDtype = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';
export type NpyData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** bool arrays come back as a Uint8Array of 0 and 1. */
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const HOST_LE = endianness() === 'LE';

interface DtypeInfo {
  dtype: NpyDtype;
  size: number;
  descr: string;
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  float32: { dtype: 'float32', size: 4, descr: '<f4' },
  float64: { dtype: 'float64', size: 8, descr: '<f8' },
  int64: { dtype: 'int64', size: 8, descr: '<i8' },
  int32: { dtype: 'int32', size: 4, descr: '<i4' },
  uint8: { dtype: 'uint8', size: 1, descr: '|u1' },
  int8: { dtype: 'int8', size: 1, descr: '|i1' },
  bool: { dtype: 'bool', size: 1, descr: '|b1' },
};

/** Maps a descr string to a dtype; one-byte types may carry any byte-order mark. */
function dtypeOfDescr(descr: string): DtypeInfo | undefined {
  const order = descr[0];
  const kind = descr.slice(1);
  for (const info of Object.values(DTYPES)) {
    if (info.descr.slice(1) !== kind) continue;
    if (info.size === 1 ? '|<>='.includes(order) : order === '<') return info;
  }
  return undefined;
}

const SUPPORTED = Object.values(DTYPES)
  .map((d) => `${d.dtype} (${d.descr})`)
  .join(', ');

export function readNpy(path: string): NpyArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new DataError(`cannot read .npy file '${path}'`, {
      hint: 'check that the path exists and is readable',
      value: path,
      cause: err,
    });
  }
  return parseNpy(bytes, path);
}

export function parseNpy(bytes: Uint8Array, source = '<bytes>'): NpyArray {
  const h = parseNpyHeader(bytes, source, bytes.length);
  const need = h.count * DTYPES[h.dtype].size;
  // Copy into a fresh buffer: the data offset need not be aligned for a typed-array view.
  // (Not bytes.slice(): on a Node Buffer that is a view into the shared pool, not a copy.)
  const copy = new Uint8Array(need);
  copy.set(bytes.subarray(h.dataStart, h.dataStart + need));
  return { dtype: h.dtype, shape: h.shape, data: toArray(h.dtype, copy, h.count) };
}

function toArray(dtype: NpyDtype, copy: Uint8Array, count: number): NpyData {
  const size = DTYPES[dtype].size;
  if (!HOST_LE && size > 1) swapBytes(copy, size);
  return makeArray(dtype, copy.buffer as ArrayBuffer, count);
}

/** What an .npy header says, checked against the file's size. */
export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Elements in the array. */
  count: number;
  /** Byte offset of the data. */
  dataStart: number;
}

/** Parses the header at the start of `bytes` (the whole file or its first bytes). */
export function parseNpyHeader(bytes: Uint8Array, source: string, fileSize: number): NpyHeader {
  const fail = (what: string, hint: string): DataError => new DataError(`${source}: ${what}`, { hint, value: source });
  const resave = 'save it with numpy.save() (C order, little-endian)';

  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw fail('not a NumPy .npy file (missing the \\x93NUMPY magic)', `pass a file written by numpy.save(); ${resave}`);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw fail('truncated .npy header', 'the file is incomplete; write it again');
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw fail(`unsupported .npy format version ${major}.${bytes[7]}`, `versions 1.0, 2.0 and 3.0 are read; ${resave}`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw fail('truncated .npy header', 'the file is incomplete; write it again');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw fail('malformed .npy header (needs descr, fortran_order and shape)', `the file is not a plain array; ${resave}`);
  }
  if (fortran === 'True') {
    throw fail('array is stored in Fortran (column-major) order', 'save numpy.ascontiguousarray(a) instead');
  }
  const info = dtypeOfDescr(descr);
  if (!info) {
    if (descr.startsWith('>') && dtypeOfDescr(`<${descr.slice(1)}`)) {
      throw fail(`array is big-endian (dtype '${descr}')`, "convert it first: a.astype(a.dtype.newbyteorder('<'))");
    }
    throw fail(`unsupported dtype '${descr}'`, `convert the array to one of ${SUPPORTED}`);
  }

  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const t = part.trim().replace(/L$/, '');
    if (t === '') continue;
    if (!/^\d+$/.test(t)) throw fail(`malformed shape (${shapeText}) in .npy header`, resave);
    shape.push(Number(t));
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * info.size)) throw fail(`shape (${shape.join(', ')}) is too large`, 'split the array into smaller files');
  const need = count * info.size;
  const have = fileSize - dataStart;
  if (have < need) {
    throw fail(`truncated data: shape (${shape.join(', ')}) of ${info.dtype} needs ${need} bytes, file has ${have}`, 'the file is incomplete; write it again');
  }
  if (have > need) {
    throw fail(`${have - need} bytes after the data that shape (${shape.join(', ')}) describes`, `the header and data disagree; ${resave}`);
  }

  return { dtype: info.dtype, shape, count, dataStart };
}

/** Largest .npy header read when only rows are wanted (headers are padded to 64 bytes; numpy writes under 4 KiB). */
const MAX_HEADER = 1 << 16;

/** The header of an .npy file, without reading its data. */
export function readNpyHeader(path: string): NpyHeader {
  return withFile(path, (fd, size) => {
    const head = new Uint8Array(Math.min(size, MAX_HEADER));
    readSync(fd, head, 0, head.length, 0);
    return parseNpyHeader(head, path, size);
  });
}

/**
 * Rows [start, start + n) along axis 0 of an .npy file, read without loading the rest,
 * so a file of many samples streams in constant memory.
 */
export function readNpyRows(path: string, header: NpyHeader, start: number, n: number): NpyData {
  const rowElements = header.shape.slice(1).reduce((a, b) => a * b, 1);
  const size = DTYPES[header.dtype].size;
  const bytes = new Uint8Array(n * rowElements * size);
  withFile(path, (fd) => {
    let done = 0;
    while (done < bytes.length) {
      const got = readSync(fd, bytes, done, bytes.length - done, header.dataStart + start * rowElements * size + done);
      if (got === 0) throw new DataError(`${path}: file ended while reading rows ${start}..${start + n}`, { value: path, hint: 'the file changed or is incomplete; write it again' });
      done += got;
    }
  });
  return toArray(header.dtype, bytes, n * rowElements);
}

function withFile<T>(path: string, f: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new DataError(`cannot read .npy file '${path}'`, { hint: 'check that the path exists and is readable', value: path, cause: err });
  }
  try {
    return f(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function makeArray(dtype: NpyDtype, buf: ArrayBuffer, count: number): NpyData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf, 0, count);
    case 'float64':
      return new Float64Array(buf, 0, count);
    case 'int64':
      return new BigInt64Array(buf, 0, count);
    case 'int32':
      return new Int32Array(buf, 0, count);
    case 'int8':
      return new Int8Array(buf, 0, count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf, 0, count);
  }
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let off = 0; off < bytes.length; off += size) {
    for (let i = 0, j = size - 1; i < j; i++, j--) {
      const t = bytes[off + i];
      bytes[off + i] = bytes[off + j];
      bytes[off + j] = t;
    }
  }
}

function dtypeOfArray(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

export interface EncodeNpyOptions {
  /** Write a Uint8Array as 'bool' (values must be 0 or 1) instead of 'uint8'. */
  dtype?: NpyDtype;
}

/** Encodes an array as .npy bytes (format 1.0, or 2.0 if the header needs it). */
export function encodeNpy(data: NpyData, shape: readonly number[], opts: EncodeNpyOptions = {}): Uint8Array {
  const natural = dtypeOfArray(data);
  const dtype = opts.dtype ?? natural;
  const compatible = dtype === natural || (dtype === 'bool' && natural === 'uint8');
  if (!compatible) {
    throw new DataError(`cannot write a ${data.constructor.name} as dtype ${dtype}`, {
      hint: `pass a typed array that matches the dtype (or omit dtype to write ${natural})`,
      value: dtype,
    });
  }
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new DataError(`invalid shape [${shape.join(', ')}] for .npy`, { hint: 'dimensions must be non-negative integers', value: shape });
    }
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new DataError(`shape [${shape.join(', ')}] holds ${count} values but the array has ${data.length}`, {
      hint: 'pass the shape that matches the data',
      value: shape,
    });
  }
  if (dtype === 'bool') {
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== 0 && data[i] !== 1) {
        throw new DataError(`bool array holds ${String(data[i])} at index ${i}`, { hint: 'bool arrays hold only 0 and 1', value: i });
      }
    }
  }

  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DTYPES[dtype].descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so the data starts on a 64-byte boundary; the header ends with '\n'.
  let major = 1;
  let prefix = 10;
  if (dict.length + 1 + prefix > 0xffff) {
    major = 2;
    prefix = 12;
  }
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const headerLen = total - prefix;
  const header = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';

  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(total + body.length);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(body, total);
  if (!HOST_LE && DTYPES[dtype].size > 1) swapBytes(out.subarray(total), DTYPES[dtype].size);
  return out;
}

/** Writes an .npy file atomically (temporary file, fsync, rename). */
export function writeNpy(path: string, data: NpyData, shape: readonly number[], opts: EncodeNpyOptions = {}): void {
  writeFileAtomic(path, encodeNpy(data, shape, opts));
}

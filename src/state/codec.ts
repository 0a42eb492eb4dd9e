// Sample encoding: one row per sample, a JSON header listing each named input's dtype,
// shape and byte range, and one BLOB holding the tensors' little-endian bytes back to back.
// Every input's byte length is a multiple of 4, so each tensor starts 4-byte aligned and is
// decoded as a Float32Array view on the row's buffer, without copying.

import { endianness } from 'node:os';
import { DataError } from '../common/index.js';

export interface TensorData {
  dtype: 'float32';
  shape: number[];
  data: Float32Array;
}

export type SampleInputs = Record<string, TensorData>;

export interface HeaderEntry {
  name: string;
  dtype: 'float32';
  shape: number[];
  offset: number;
  bytes: number;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Throws DataError for a malformed sample; non-finite values are the caller's check. */
export function validateInputs(inputs: SampleInputs): void {
  const names = Object.keys(inputs);
  if (names.length === 0) throw new DataError('a sample needs at least one input');
  for (const name of names) {
    const t = inputs[name];
    if (t.dtype !== 'float32') {
      throw new DataError(`input "${name}": dtype ${String(t.dtype)} cannot be buffered`, { value: t.dtype, hint: 'only float32 inputs are stored' });
    }
    if (!(t.data instanceof Float32Array)) throw new DataError(`input "${name}": data must be a Float32Array`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new DataError(`input "${name}": shape ${JSON.stringify(t.shape)} has a dimension that is not a whole number ≥ 0`, { value: t.shape });
    }
    const size = t.shape.reduce((a, d) => a * d, 1);
    if (size !== t.data.length) {
      throw new DataError(`input "${name}": shape ${JSON.stringify(t.shape)} holds ${size} values but data has ${t.data.length}`, { value: t.shape });
    }
  }
}

export function allFinite(inputs: SampleInputs): boolean {
  for (const name in inputs) {
    const d = inputs[name].data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  }
  return true;
}

/** Copies the inputs into one buffer, so the caller may reuse its arrays at once. */
export function encodeInputs(inputs: SampleInputs): { header: string; data: Buffer } {
  const entries: HeaderEntry[] = [];
  let offset = 0;
  for (const name of Object.keys(inputs)) {
    const t = inputs[name];
    entries.push({ name, dtype: 'float32', shape: [...t.shape], offset, bytes: t.data.byteLength });
    offset += t.data.byteLength;
  }
  const data = Buffer.allocUnsafe(offset);
  for (const e of entries) {
    const src = inputs[e.name].data;
    if (LITTLE_ENDIAN_HOST) {
      data.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), e.offset);
    } else {
      for (let i = 0; i < src.length; i++) data.writeFloatLE(src[i], e.offset + 4 * i);
    }
  }
  return { header: JSON.stringify(entries), data };
}

export function decodeInputs(header: string, blob: Buffer): SampleInputs {
  const entries = JSON.parse(header) as HeaderEntry[];
  // SQLite hands back a fresh, aligned buffer; copy only if that ever stops being true.
  const bytes = blob.byteOffset % 4 === 0 ? blob : Buffer.from(blob);
  const out: SampleInputs = {};
  for (const e of entries) {
    const n = e.bytes / 4;
    let data: Float32Array;
    if (LITTLE_ENDIAN_HOST) {
      data = new Float32Array(bytes.buffer, bytes.byteOffset + e.offset, n);
    } else {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = bytes.readFloatLE(e.offset + 4 * i);
    }
    out[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return out;
}

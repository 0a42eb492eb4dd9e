// Open Inference Protocol (KServe v2) request decoding and response encoding, JSON and the
// binary tensor extension. Decoding only checks what is needed to build tensors; whether a
// tensor fits the model is the engine's call, so every fit error reads the same whatever
// the encoding was.

import { endianness } from 'node:os';
import type { InferInput, InferOutput, OutputData } from '../runtime/index.js';
import { HttpError } from './errors.js';

export const BINARY_HEADER = 'inference-header-content-length';

export interface DecodedRequest {
  id?: string;
  inputs: Record<string, InferInput>;
  /** Outputs to return, in order, each with whether to send it as raw bytes. */
  outputs?: { name: string; binary: boolean }[];
  binaryOutputs: boolean;
}

interface WireInput {
  name: unknown;
  shape: unknown;
  datatype: unknown;
  parameters?: { binary_data_size?: unknown };
  data?: unknown;
}

// Every supported box (ARM64, x86) is little-endian; the byte swap keeps a big-endian host correct rather than fast.
const littleEndianHost = endianness() === 'LE';

/**
 * Splits a body into its JSON header and the raw tensor bytes that follow it. `headerLength`
 * comes from the Inference-Header-Content-Length header; absent means the body is all JSON.
 */
export function splitBody(body: unknown, headerLength: string | undefined): { header: unknown; binary: Buffer } {
  if (!Buffer.isBuffer(body)) {
    if (headerLength !== undefined) throw new HttpError('invalid-binary-header', 'a binary request body was read as JSON', { hint: 'send it as application/octet-stream' });
    return { header: body, binary: Buffer.alloc(0) };
  }
  if (headerLength === undefined) {
    throw new HttpError('invalid-binary-header', 'a binary request needs the Inference-Header-Content-Length header (bytes of JSON before the tensor data)', { hint: 'send the header, or send JSON as application/json' });
  }
  const n = Number(headerLength);
  if (!Number.isSafeInteger(n) || n < 1 || n > body.length) {
    throw new HttpError('invalid-binary-header', `Inference-Header-Content-Length ${headerLength} is not between 1 and the body size ${body.length}`, { value: headerLength, hint: "send the JSON header's length in bytes" });
  }
  return { header: parseJson(body.subarray(0, n)), binary: body.subarray(n) };
}

export function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new HttpError('invalid-json', `the body is not valid JSON: ${(err as Error).message}`, { hint: 'send one JSON object (check it with a JSON parser such as jq)' });
  }
}

export function decodeInferRequest(header: unknown, binary: Buffer): DecodedRequest {
  if (!isObject(header)) throw new HttpError('invalid-request', 'the request must be a JSON object with an "inputs" array');
  const id = header.id === undefined ? undefined : String(header.id);
  if (!Array.isArray(header.inputs) || header.inputs.length === 0) {
    throw new HttpError('invalid-request', 'the request has no "inputs" array');
  }
  const inputs: Record<string, InferInput> = {};
  let offset = 0;
  for (const raw of header.inputs as unknown[]) {
    if (!isObject(raw)) throw new HttpError('invalid-request', 'each input must be an object with name, shape, datatype and data');
    const input = raw as unknown as WireInput;
    if (typeof input.name !== 'string' || input.name === '') throw new HttpError('invalid-request', 'an input has no "name"');
    const name = input.name;
    if (Object.hasOwn(inputs, name)) throw new HttpError('invalid-request', `input '${name}' appears twice`);
    if (!Array.isArray(input.shape) || !input.shape.every((d) => typeof d === 'number')) {
      throw new HttpError('invalid-request', `input '${name}' needs "shape", an array of numbers`);
    }
    if (typeof input.datatype !== 'string') throw new HttpError('invalid-request', `input '${name}' needs "datatype", e.g. "FP32"`);
    const shape = input.shape as number[];
    const binarySize = input.parameters?.binary_data_size;
    let data: Float32Array;
    if (binarySize !== undefined) {
      if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) {
        throw new HttpError('binary-size', `input '${name}' has binary_data_size ${String(binarySize)}, not a byte count`, { value: binarySize });
      }
      const size = binarySize as number;
      if (offset + size > binary.length) {
        throw new HttpError('binary-size', `input '${name}' declares ${size} binary bytes but only ${binary.length - offset} follow the header`, { value: size });
      }
      data = input.datatype === 'FP32' ? float32FromBytes(binary.subarray(offset, offset + size), name) : new Float32Array(0);
      offset += size;
    } else {
      if (input.data === undefined) throw new HttpError('invalid-request', `input '${name}' has neither "data" nor parameters.binary_data_size`);
      data = float32FromJson(input.data, name);
    }
    // A non-FP32 input reaches the engine with empty data; its datatype check names the problem.
    inputs[name] = { datatype: input.datatype, shape, data };
  }
  if (offset !== binary.length) {
    throw new HttpError('binary-size', `${binary.length - offset} bytes after the header belong to no input`, { hint: 'make each binary_data_size the byte length of its input' });
  }
  const params = isObject(header.parameters) ? header.parameters : {};
  const binaryOutputs = params.binary_data_output === true;
  let outputs: DecodedRequest['outputs'];
  if (header.outputs !== undefined) {
    if (!Array.isArray(header.outputs)) throw new HttpError('invalid-request', '"outputs" must be an array of {name}');
    outputs = (header.outputs as unknown[]).map((o) => {
      if (!isObject(o) || typeof o.name !== 'string') throw new HttpError('invalid-request', 'each requested output needs a "name"');
      const p = isObject(o.parameters) ? o.parameters : {};
      return { name: o.name, binary: typeof p.binary_data === 'boolean' ? p.binary_data : binaryOutputs };
    });
  }
  return { id, inputs, outputs, binaryOutputs };
}

function float32FromBytes(bytes: Buffer, name: string): Float32Array {
  if (bytes.length % 4 !== 0) throw new HttpError('binary-size', `input '${name}' has ${bytes.length} binary bytes, not a whole number of FP32 values`, { value: bytes.length });
  // Copy: the body's offset need not be 4-byte aligned, and the body buffer is pooled.
  const out = new Float32Array(bytes.length / 4);
  if (littleEndianHost) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

function float32FromJson(data: unknown, name: string): Float32Array {
  if (!Array.isArray(data)) throw new HttpError('invalid-request', `input '${name}' "data" must be an array`);
  const values: number[] = [];
  // Nested arrays (row-major) are as valid as a flat one. Walk them in order with an explicit
  // stack: a hostile body of deeply nested brackets must not overflow the call stack.
  const stack: { arr: unknown[]; i: number }[] = [{ arr: data, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.i >= top.arr.length) {
      stack.pop();
      continue;
    }
    const v = top.arr[top.i++];
    if (typeof v === 'number') values.push(v);
    else if (Array.isArray(v)) stack.push({ arr: v, i: 0 });
    else throw new HttpError('invalid-request', `input '${name}' data holds ${JSON.stringify(v)}, not a number`);
  }
  return Float32Array.from(values);
}

/** JSON form of one output: numbers for numeric types (int64 included), strings for BYTES. */
export function jsonData(data: OutputData): (number | string | boolean)[] {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Array.from(data, (v) => Number(v));
  if (Array.isArray(data)) return data;
  return Array.from(data as ArrayLike<number>);
}

/** Raw little-endian bytes of one output, as the binary extension sends them. */
export function binaryData(output: InferOutput): Buffer {
  const data = output.data;
  if (Array.isArray(data)) {
    // BYTES: each element is a 4-byte little-endian length followed by its bytes.
    return Buffer.concat(data.flatMap((s) => {
      const bytes = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(bytes.length);
      return [len, bytes];
    }));
  }
  const view = data as Exclude<OutputData, string[]>;
  const bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  if (littleEndianHost || view.BYTES_PER_ELEMENT === 1) return bytes;
  const swapped = Buffer.from(bytes);
  if (view.BYTES_PER_ELEMENT === 2) swapped.swap16();
  else if (view.BYTES_PER_ELEMENT === 4) swapped.swap32();
  else swapped.swap64();
  return swapped;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Open Inference Protocol (KServe v2) request decoding and response encoding, JSON and the
// binary tensor extension. Decoding is pure, bytes in and tensors or a typed 4xx error out,
// and never builds more than the request needs: the JSON header is read within depth and
// size limits and tensor data is decoded straight from the bytes once it fits its declared
// shape. It checks that a request is consistent in itself (data that fits its shape, finite
// values); whether a tensor fits the model is the engine's call, so every fit error reads
// the same whatever the encoding was.

import type { DeclaredInput, InferInput, InferOutput, OutputData } from '../runtime/index.js';
import { printable, printableJson } from '../common/errors.js';
import { HttpError } from './errors.js';
import { JSON_BYTE, JsonReader, JsonSpan, setOwn } from './json-reader.js';
import { float32FromBinary, float32FromJson, littleEndianHost } from './tensor-data.js';
import type { PreprocessSpec } from '../images/index.js';
import { declaredImageInput, imageCount, imagesFromBinary, imagesFromJson, noPreprocessError, type PendingImages } from './image-inputs.js';

export const BINARY_HEADER = 'inference-header-content-length';

/** An inference request as it arrived: its bytes and how it said they are laid out. */
export interface InferBody {
  bytes: Buffer;
  /** Sent as application/octet-stream, which only the binary extension uses. */
  octetStream: boolean;
  /** The Inference-Header-Content-Length header, when sent. */
  headerLength: string | undefined;
}

/** A request's JSON header, read with its tensor data left in `json` as spans, and the bytes after it. */
export interface InferEnvelope {
  header: unknown;
  json: Buffer;
  binary: Buffer;
  /** The request's id, known as soon as the header is read so error bodies can echo it. */
  id?: string;
}

export interface DecodedRequest {
  id?: string;
  inputs: Record<string, InferInput>;
  /** Outputs to return, in order, each with whether to send it as raw bytes. */
  outputs?: { name: string; binary: boolean }[];
  binaryOutputs: boolean;
  /** BYTES inputs holding encoded images, still to decode into `inputs` (decodeImages). */
  images: PendingImages[];
}

interface WireInput {
  name: unknown;
  shape: unknown;
  datatype: unknown;
  parameters?: { binary_data_size?: unknown };
  data?: unknown;
}

/** Fields read from a request and from each input; any others are skipped unbuilt. */
const REQUEST_FIELDS = new Set(['id', 'parameters', 'outputs']);
const INPUT_FIELDS = new Set(['name', 'shape', 'datatype', 'parameters', 'data']);

/** Refuses declared inputs that cannot be served (the engine's model check), before any data is decoded. */
export type DeclaredCheck = (inputs: Record<string, DeclaredInput>) => void;

/** Bytes to tensors: the whole decoding, as the server runs it in two steps. */
export function parseInferRequest(body: InferBody, checkDeclared?: DeclaredCheck, preprocess?: PreprocessSpec | null): DecodedRequest {
  return decodeInferRequest(readInferEnvelope(body), checkDeclared, preprocess);
}

/** Splits the body and reads its JSON header, leaving tensor data undecoded. */
export function readInferEnvelope(body: InferBody): InferEnvelope {
  const { json, binary } = splitBody(body);
  const header = readRequestHeader(json, body.headerLength === undefined ? 'the body' : 'the JSON header');
  return { header, json, binary, id: requestId(header) };
}

function splitBody(body: InferBody): { json: Buffer; binary: Buffer } {
  if (body.headerLength === undefined) {
    if (body.octetStream) {
      throw new HttpError('invalid-binary-header', 'a binary request needs the Inference-Header-Content-Length header (bytes of JSON before the tensor data)', {
        hint: 'send the header, or send JSON as application/json',
      });
    }
    return { json: body.bytes, binary: Buffer.alloc(0) };
  }
  const n = headerByteCount(body.headerLength, body.bytes.length);
  return { json: body.bytes.subarray(0, n), binary: body.bytes.subarray(n) };
}

/** A byte count written as plain decimal digits, or undefined for anything else. */
export function decimalByteCount(text: string): number | undefined {
  // Number() would also take hex, binary, exponents and padding ('0x76', '0b1', '1e2', ' 7').
  return /^[0-9]{1,15}$/.test(text) ? Number(text) : undefined;
}

function headerByteCount(text: string, bodyLength: number): number {
  const quoted = printable(text);
  const n = decimalByteCount(text);
  if (n === undefined) {
    throw new HttpError('invalid-binary-header', `Inference-Header-Content-Length '${quoted}' is not a decimal byte count`, {
      value: quoted,
      hint: "send the JSON header's length in bytes as decimal digits",
    });
  }
  if (n < 1 || n > bodyLength) {
    throw new HttpError('invalid-binary-header', `Inference-Header-Content-Length ${quoted} is not between 1 and the body size ${bodyLength}`, {
      value: n,
      hint: 'send the JSON header\'s length in bytes',
    });
  }
  return n;
}

/**
 * Reads the request object, building only its known fields and leaving each input's "data"
 * array as a span. Anything else is built whole (within the reader's limits) so decoding
 * names what is wrong with it.
 */
function readRequestHeader(json: Buffer, what: string): unknown {
  return JsonReader.document(json, what, (r) => {
    if (r.peek() !== JSON_BYTE.LBRACE) return r.build(0);
    r.noteBuilt();
    const request: Record<string, unknown> = {};
    r.readObject(0, (key) => {
      if (key === 'inputs') setOwn(request, key, readInputs(r));
      else if (REQUEST_FIELDS.has(key)) setOwn(request, key, r.build(1));
      else r.skip(1);
    });
    return request;
  });
}

function readInputs(r: JsonReader): unknown {
  if (r.peek() !== JSON_BYTE.LBRACKET) return r.build(1);
  r.noteBuilt();
  const inputs: unknown[] = [];
  r.readArray(1, () => inputs.push(readInput(r)));
  return inputs;
}

function readInput(r: JsonReader): unknown {
  if (r.peek() !== JSON_BYTE.LBRACE) return r.build(2);
  r.noteBuilt();
  const input: Record<string, unknown> = {};
  r.readObject(2, (key) => {
    if (key === 'data' && r.peek() === JSON_BYTE.LBRACKET) setOwn(input, key, r.skip(3));
    else if (INPUT_FIELDS.has(key)) setOwn(input, key, r.build(3));
    else r.skip(3);
  });
  return input;
}

function requestId(header: unknown): string | undefined {
  if (!isObject(header) || header.id === undefined) return undefined;
  if (typeof header.id === 'string') return header.id;
  if (typeof header.id === 'number' && Number.isFinite(header.id)) return String(header.id);
  throw invalidRequest(`"id" must be a string, not ${printableJson(header.id)}`, header.id);
}

/**
 * Decodes every input's data, once all inputs' names, shapes and datatypes have been read
 * and passed `checkDeclared`: data is decoded only for tensors that can be served. A BYTES
 * input is encoded images (with `preprocess` configured), checked as the FP32 tensor they
 * will become and left in `images` for decodeImages, which is asynchronous.
 */
export function decodeInferRequest({ header, json, binary, id }: InferEnvelope, checkDeclared?: DeclaredCheck, preprocess?: PreprocessSpec | null): DecodedRequest {
  if (!isObject(header)) throw invalidRequest('the request must be a JSON object with an "inputs" array', undefined);
  if (!Array.isArray(header.inputs) || header.inputs.length === 0) throw invalidRequest('the request has no "inputs" array', undefined);
  const heads = inputHeads(header.inputs as unknown[]);
  const declared = (h: InputHead) => {
    if (h.datatype !== 'BYTES') return { datatype: h.datatype, shape: h.shape };
    if (!preprocess) throw noPreprocessError(printable(h.name));
    return declaredImageInput(preprocess, imageCount(h.shape));
  };
  const declaredInputs = Object.fromEntries(heads.map((h) => [h.name, declared(h)]));
  checkDeclared?.(declaredInputs);
  const inputs: Record<string, InferInput> = {};
  const images: PendingImages[] = [];
  let offset = 0;
  for (const { input, name, shape, datatype } of heads) {
    // The name as messages quote it: a client's name may hold line breaks or megabytes.
    const label = printable(name);
    const binarySize = isObject(input.parameters) ? input.parameters.binary_data_size : undefined;
    if (datatype === 'BYTES' && preprocess) {
      let encoded: Buffer[];
      if (binarySize !== undefined) {
        const bytes = binarySlice(binary, offset, binarySize, label);
        offset += bytes.length;
        encoded = imagesFromBinary(bytes, label, imageCount(shape));
      } else {
        encoded = imagesFromJson(json, jsonDataSpan(input.data, label), label, imageCount(shape));
      }
      images.push({ name, images: encoded });
      setOwn(inputs, name, { ...declaredInputs[name], data: new Float32Array(0) });
      continue;
    }
    let data: Float32Array;
    if (binarySize !== undefined) {
      const bytes = binarySlice(binary, offset, binarySize, label);
      offset += bytes.length;
      data = datatype === 'FP32' ? float32FromBinary(bytes, label, shape) : new Float32Array(0);
    } else {
      data = datatype === 'FP32' ? float32FromJson(json, jsonDataSpan(input.data, label), label, shape) : new Float32Array(0);
    }
    // A non-FP32 input reaches the engine with empty data; its datatype check names the problem.
    setOwn(inputs, name, { datatype, shape, data });
  }
  if (offset !== binary.length) {
    throw new HttpError('binary-size', `${binary.length - offset} bytes after the header belong to no input`, {
      value: binary.length - offset,
      hint: 'make each binary_data_size the byte length of its input',
    });
  }
  const params = isObject(header.parameters) ? header.parameters : {};
  const binaryOutputs = params.binary_data_output === true;
  return { id, inputs, outputs: requestedOutputs(header.outputs, binaryOutputs), binaryOutputs, images };
}

interface InputHead {
  input: WireInput;
  name: string;
  shape: number[];
  datatype: string;
}

/** Name, shape and datatype of every input, each checked, names unique. */
function inputHeads(raws: unknown[]): InputHead[] {
  const seen = new Set<string>();
  return raws.map((raw) => {
    if (!isObject(raw)) throw invalidRequest('each input must be an object with name, shape, datatype and data', raw);
    const head = inputHead(raw as unknown as WireInput);
    if (seen.has(head.name)) throw invalidRequest(`input '${printable(head.name)}' appears twice`, head.name);
    seen.add(head.name);
    return head;
  });
}

function inputHead(input: WireInput): InputHead {
  if (typeof input.name !== 'string' || input.name === '') throw invalidRequest('an input has no "name"', input.name);
  const name = input.name;
  const label = printable(name);
  if (!Array.isArray(input.shape) || !input.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw invalidRequest(`input '${label}' needs "shape", an array of non-negative integers, not ${printableJson(input.shape)}`, input.shape);
  }
  if (typeof input.datatype !== 'string') throw invalidRequest(`input '${label}' needs "datatype", e.g. "FP32", not ${printableJson(input.datatype)}`, input.datatype);
  return { input, name, shape: input.shape as number[], datatype: input.datatype };
}

function binarySlice(binary: Buffer, offset: number, size: unknown, name: string): Buffer {
  if (!Number.isSafeInteger(size) || (size as number) < 0) {
    throw new HttpError('binary-size', `input '${name}' has binary_data_size ${printableJson(size)}, not a byte count`, { value: size, hint: 'set binary_data_size to the byte length of the input' });
  }
  const n = size as number;
  if (offset + n > binary.length) {
    throw new HttpError('binary-size', `input '${name}' declares ${n} binary bytes but only ${binary.length - offset} follow the header`, {
      value: n,
      hint: 'send every input\'s bytes after the JSON header, in the order of "inputs"',
    });
  }
  return binary.subarray(offset, offset + n);
}

function jsonDataSpan(data: unknown, name: string): JsonSpan {
  if (data instanceof JsonSpan) return data;
  if (data === undefined) throw invalidRequest(`input '${name}' has neither "data" nor parameters.binary_data_size`, undefined);
  throw invalidRequest(`input '${name}' "data" must be an array`, data);
}

function requestedOutputs(outputs: unknown, binaryOutputs: boolean): DecodedRequest['outputs'] {
  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs)) throw invalidRequest('"outputs" must be an array of {name}', outputs);
  return outputs.map((o: unknown) => {
    if (!isObject(o) || typeof o.name !== 'string') throw invalidRequest('each requested output needs a "name"', o);
    const p = isObject(o.parameters) ? o.parameters : {};
    return { name: o.name, binary: typeof p.binary_data === 'boolean' ? p.binary_data : binaryOutputs };
  });
}

function invalidRequest(message: string, value: unknown): HttpError {
  return new HttpError('invalid-request', message, { value, hint: 'see the KServe v2 inference request format: {"inputs":[{"name","shape","datatype","data"}]}' });
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

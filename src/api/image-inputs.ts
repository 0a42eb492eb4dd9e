// Encoded images sent as a KServe v2 BYTES input under the model's input name: each element
// is one JPEG, PNG or WebP file (base64 strings in JSON; in the binary extension the
// standard 4-byte length-prefixed elements, or a lone image's bytes as they are). They
// become the FP32 tensor the configured preprocessing makes of them, so the engine, the
// sampler and the buffer see a tensor like any other.

import { printable } from '../common/errors.js';
import { CalibdError } from '../common/index.js';
import { imageToTensor, tensorDims, type PreprocessSpec } from '../images/index.js';
import type { InferInput } from '../runtime/index.js';
import { HttpError } from './errors.js';
import { readJson, setOwn, type JsonSpan } from './json-reader.js';

/** An image input read from the request, decoded only after every input has been checked. */
export interface PendingImages {
  name: string;
  images: Buffer[];
}

/** Images in one BYTES input: the element count of its shape. */
export function imageCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The FP32 input a BYTES input of `count` images stands for, as the engine checks it. */
export function declaredImageInput(spec: PreprocessSpec, count: number): { datatype: string; shape: number[] } {
  return { datatype: 'FP32', shape: [count, ...tensorDims(spec)] };
}

export function noPreprocessError(name: string): HttpError {
  return new HttpError('invalid-image', `input '${name}' is BYTES (encoded images), but this daemon has no preprocessing configured`, {
    value: name,
    hint: 'set preprocess: in the config (a preset such as imagenet, or a spec), or send the FP32 tensor',
  });
}

/** JSON BYTES data: an array of base64 strings, one per image. */
export function imagesFromJson(json: Buffer, span: JsonSpan, name: string, count: number): Buffer[] {
  const data = readJson(json.subarray(span.start, span.end), `input '${name}' data`);
  if (!Array.isArray(data) || data.length !== count || !data.every((d) => typeof d === 'string')) {
    throw new HttpError('invalid-image', `input '${name}' data must be ${count} base64 string${count === 1 ? '' : 's'}, one per image`, {
      value: name,
      hint: 'send "data": ["<base64 of the JPEG/PNG/WebP file>"] with "shape": [1]',
    });
  }
  return (data as string[]).map((s, i) => {
    if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
      throw new HttpError('invalid-image', `input '${name}' image ${i} is not base64`, { value: printable(s), hint: 'encode the file with standard base64 (A-Z a-z 0-9 + /, = padding)' });
    }
    return Buffer.from(s, 'base64');
  });
}

/** Binary BYTES data: `count` length-prefixed elements, or, for one image, its bytes as they are. */
export function imagesFromBinary(bytes: Buffer, name: string, count: number): Buffer[] {
  // A lone image cannot be mistaken for a prefixed one: JPEG, PNG and WebP files begin with
  // bytes that, read as a length, exceed any request.
  if (count === 1 && (bytes.length < 4 || bytes.readUInt32LE(0) !== bytes.length - 4)) return [bytes];
  const images: Buffer[] = [];
  let at = 0;
  while (at < bytes.length && images.length < count) {
    const n = at + 4 <= bytes.length ? bytes.readUInt32LE(at) : -1;
    if (n < 0 || at + 4 + n > bytes.length) break;
    images.push(bytes.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  if (images.length !== count || at !== bytes.length) {
    throw new HttpError('binary-size', `input '${name}' binary data is not ${count} length-prefixed images`, {
      value: bytes.length,
      hint: 'send each image as a 4-byte little-endian length and its bytes, or one image as it is',
    });
  }
  return images;
}

/** Decodes pending images into their inputs' FP32 tensors; a file that is no image is a 400. */
export async function decodeImages(pending: PendingImages[], inputs: Record<string, InferInput>, spec: PreprocessSpec): Promise<void> {
  for (const { name, images } of pending) {
    const per = tensorDims(spec).reduce((a, b) => a * b, 1);
    const data = new Float32Array(images.length * per);
    for (let i = 0; i < images.length; i++) {
      try {
        data.set(await imageToTensor(images[i], spec, `input '${printable(name)}' image ${i}`), i * per);
      } catch (err) {
        if (err instanceof CalibdError) throw new HttpError('invalid-image', err.message, { value: name, hint: 'send the JPEG, PNG or WebP file bytes as they are' });
        throw err;
      }
    }
    setOwn(inputs, name, { ...declaredImageInput(spec, images.length), data });
  }
}

// BYTES inputs in KServe v2 requests, decoded without a daemon: base64 in JSON, raw or
// length-prefixed through the binary extension, and each malformed form refused as a 400.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/api/errors.js';
import { decodeImages } from '../../src/api/image-inputs.js';
import { parseInferRequest, type DecodedRequest } from '../../src/api/protocol.js';
import { preprocessSpec } from '../../src/images/index.js';
import { thrown } from '../helpers/thrown.js';

const spec = preprocessSpec({ size: [2, 1], color: 'gray', scale: 1 });

async function png(grey: number[]): Promise<Buffer> {
  return sharp(Buffer.from(grey), { raw: { width: grey.length, height: 1, channels: 1 } }).png().toBuffer();
}

function json(body: unknown) {
  return { bytes: Buffer.from(JSON.stringify(body)), octetStream: false, headerLength: undefined };
}

function binary(inputs: unknown[], data: Buffer) {
  const header = Buffer.from(JSON.stringify({ inputs }));
  return { bytes: Buffer.concat([header, data]), octetStream: true, headerLength: String(header.length) };
}

async function decoded(r: DecodedRequest) {
  await decodeImages(r.images, r.inputs, spec);
  return Object.fromEntries(Object.entries(r.inputs).map(([k, v]) => [k, { datatype: v.datatype, shape: v.shape, data: Array.from(v.data) }]));
}

describe('BYTES image inputs', () => {
  it('JSON: base64 strings become the preprocessed FP32 tensor, declared to the engine as such', async () => {
    const declared: unknown[] = [];
    const r = parseInferRequest(json({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [2], data: [(await png([1, 2])).toString('base64'), (await png([3, 4])).toString('base64')] }] }), (d) => declared.push(d), spec);
    expect(declared).toEqual([{ x: { datatype: 'FP32', shape: [2, 1, 1, 2] } }]);
    expect(await decoded(r)).toEqual({ x: { datatype: 'FP32', shape: [2, 1, 1, 2], data: [1, 2, 3, 4] } });
  });

  it('binary: one image as it is, or length-prefixed elements', async () => {
    const a = await png([5, 6]);
    const raw = parseInferRequest(binary([{ name: 'x', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: a.length } }], a), undefined, spec);
    expect((await decoded(raw)).x.data).toEqual([5, 6]);
    const b = await png([7, 8]);
    const prefixed = Buffer.concat([Buffer.from(Uint32Array.of(a.length).buffer), a, Buffer.from(Uint32Array.of(b.length).buffer), b]);
    const two = parseInferRequest(binary([{ name: 'x', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: prefixed.length } }], prefixed), undefined, spec);
    expect((await decoded(two)).x.data).toEqual([5, 6, 7, 8]);
  });

  it('refuses BYTES without preprocessing, non-base64, a wrong count and bytes that are no image', async () => {
    const b64 = (await png([1, 2])).toString('base64');
    const noSpec = thrown(HttpError, () => parseInferRequest(json({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: [b64] }] })));
    expect(noSpec.code).toBe('invalid-image');
    expect(noSpec.message).toBe("input 'x' is BYTES (encoded images), but this daemon has no preprocessing configured");
    expect(thrown(HttpError, () => parseInferRequest(json({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: ['@@@@'] }] }), undefined, spec)).message).toBe("input 'x' image 0 is not base64");
    expect(thrown(HttpError, () => parseInferRequest(json({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [2], data: [b64] }] }), undefined, spec)).message).toBe("input 'x' data must be 2 base64 strings, one per image");
    const junk = parseInferRequest(json({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: [Buffer.from('hello').toString('base64')] }] }), undefined, spec);
    const err = await decodeImages(junk.images, junk.inputs, spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(400);
    expect((err as HttpError).message).toMatch(/^input 'x' image 0 is not a readable JPEG, PNG or WebP image/);
  });
});

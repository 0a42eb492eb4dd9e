// Property-based fuzzing of the KServe request decoders (JSON and the binary tensor
// extension): for arbitrary and mutated bodies and headers, decoding either returns a
// well-formed request or throws the project's typed 4xx error, one line, with a catalogued
// code; never another exception, and never slowly. Differential properties check the
// bounded JSON reader and the number decoder against JSON.parse.
//
// Seed and run counts come from ./settings.ts (a short run in npm test, npm run fuzz for a
// long one). A failure prints the seed and path to replay it; every crash found becomes a
// case in test/api/protocol.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CalibdError, httpStatusOf } from '../../src/common/index.js';
import { readJson } from '../../src/api/json-reader.js';
import { parseInferRequest, type DecodedRequest, type InferBody } from '../../src/api/protocol.js';
import { FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzRuns } from './settings.js';

const settings = { seed: FUZZ_SEED, numRuns: fuzzRuns(300) };
/** A body of a few kilobytes decodes in well under a millisecond; this only catches runaways. */
const SLOW_MS = 500;

describe('KServe decoders under fuzzing', { timeout: FUZZ_TIMEOUT_MS }, () => {
  it('JSON requests built from random parts, then mutated', () => {
    fc.assert(
      fc.property(mutated(requestText()), (bytes) => {
        decodeOrRefuse({ bytes, octetStream: false, headerLength: undefined });
      }),
      settings,
    );
  });

  it('arbitrary JSON documents and arbitrary bytes as the body', () => {
    fc.assert(
      fc.property(fc.oneof(jsonDocument().map((t) => Buffer.from(t)), fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b))), fc.boolean(), (bytes, octetStream) => {
        decodeOrRefuse({ bytes, octetStream, headerLength: undefined });
      }),
      settings,
    );
  });

  it('binary-extension bodies with random header lengths, sizes and tensor bytes', () => {
    fc.assert(
      fc.property(binaryBody(), (body) => {
        decodeOrRefuse(body);
      }),
      settings,
    );
  });

  it('the bounded reader reads every JSON document as JSON.parse does', () => {
    fc.assert(
      fc.property(jsonDocument(), (text) => {
        expect(readJson(Buffer.from(text))).toEqual(JSON.parse(text));
      }),
      settings,
    );
  });

  it('tensor data decodes to the FP32 values JSON.parse and Float32Array give, or is refused as non-finite', () => {
    fc.assert(
      fc.property(fc.array(numberText(), { minLength: 1, maxLength: 40 }), (spellings) => {
        const body = Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${spellings.length}],"data":[${spellings.join(',')}]}]}`);
        const expected = Float32Array.from(spellings.map((s) => JSON.parse(s) as number));
        const request = { bytes: body, octetStream: false, headerLength: undefined };
        if (expected.every(Number.isFinite)) {
          const data = parseInferRequest(request).inputs.x.data;
          expected.forEach((v, i) => expect(Object.is(data[i], v), spellings[i]).toBe(true));
        } else {
          expect(() => parseInferRequest(request)).toThrow(expect.objectContaining({ code: 'non-finite' }));
        }
      }),
      settings,
    );
  });
});

/** Decodes `body`; passes if the result is well formed or the error is a typed one-line 4xx. */
function decodeOrRefuse(body: InferBody): void {
  const started = performance.now();
  try {
    expectWellFormed(parseInferRequest(body));
  } catch (err) {
    expectTypedRefusal(err);
  }
  expect(performance.now() - started).toBeLessThan(SLOW_MS);
}

function expectTypedRefusal(err: unknown): void {
  if (!(err instanceof CalibdError)) throw err;
  // The code is typed as a catalogue key; its catalogued status says whose fault it is.
  const status = httpStatusOf(err.code);
  expect(status, err.message).toBeGreaterThanOrEqual(400);
  expect(status, err.message).toBeLessThan(500);
  expect(err.oneLine()).not.toMatch(/[\r\n]/);
  expect(err.oneLine().length).toBeLessThan(600);
}

function expectWellFormed(request: DecodedRequest): void {
  const names = Object.keys(request.inputs);
  expect(names.length).toBeGreaterThan(0);
  for (const name of names) {
    const input = request.inputs[name];
    expect(name).not.toBe('');
    expect(typeof input.datatype).toBe('string');
    expect(input.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
    expect(input.data).toBeInstanceOf(Float32Array);
    if (input.datatype === 'FP32') {
      expect(input.data.length).toBe(input.shape.reduce((a, b) => a * b, 1));
      expect(input.data.every(Number.isFinite)).toBe(true);
    }
  }
  if (request.id !== undefined) expect(typeof request.id).toBe('string');
  expect(typeof request.binaryOutputs).toBe('boolean');
  for (const o of request.outputs ?? []) expect([typeof o.name, typeof o.binary]).toEqual(['string', 'boolean']);
}

// ---- generators -------------------------------------------------------------------------

/** Keys a hostile client would try, mixed with the ones the decoder reads. */
const trickyKey = fc.constantFrom('name', 'shape', 'datatype', 'data', 'parameters', 'binary_data_size', 'inputs', 'outputs', 'id', '__proto__', 'constructor', 'toString', 'valueOf', 'toJSON', '');

/** JSON text of any value, small and shallow, with tricky keys among random ones. */
function jsonDocument(): fc.Arbitrary<string> {
  const key = fc.oneof(trickyKey, fc.string({ maxLength: 6 }));
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('array'), tie('object')),
    leaf: fc.oneof(fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.string({ maxLength: 8, unit: 'binary' })),
    array: fc.array(tie('node'), { maxLength: 5 }),
    object: fc.dictionary(key, tie('node'), { maxKeys: 5 }),
  })).node;
  return value.map((v) => JSON.stringify(v) ?? 'null');
}

/** A JSON number literal, spelt every way JSON allows, some beyond FP32's range. */
function numberText(): fc.Arbitrary<string> {
  const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });
  const spelt = fc
    .record({
      minus: fc.boolean(),
      int: fc.oneof(fc.constant('0'), fc.tuple(fc.constantFrom(...'123456789'), digits(0, 20)).map(([a, b]) => a + b)),
      frac: fc.option(digits(1, 25)),
      exp: fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 3))),
    })
    .map(({ minus, int, frac, exp }) => `${minus ? '-' : ''}${int}${frac === null ? '' : `.${frac}`}${exp === null ? '' : exp.join('')}`);
  const printed = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.float({ noNaN: true, noDefaultInfinity: true }).map((f) => f * (1 + 2 ** -30))).map((d) => JSON.stringify(d));
  return fc.oneof(spelt, printed, float32Midpoint());
}

/** Doubles at, or a few double ulps from, the midpoint of two neighbouring float32s: where rounding twice could go wrong. */
function float32Midpoint(): fc.Arbitrary<string> {
  return fc.tuple(fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-3e38), max: Math.fround(3e38) }), fc.integer({ min: -2, max: 2 })).map(([f, ulps]) => {
    const next = new Float32Array([f]);
    new Int32Array(next.buffer)[0] += f >= 0 ? 1 : -1;
    const mid = new Float64Array([(f + next[0]) / 2]);
    new BigInt64Array(mid.buffer)[0] += BigInt(ulps);
    return JSON.stringify(mid[0]);
  });
}

/** Tensor data for `shape`: flat, nested as the shape, or ragged, with numbers or stray values. */
function dataText(shape: number[]): fc.Arbitrary<string> {
  const count = shape.reduce((a, b) => a * b, 1);
  const nest = (values: string[], dims: number[]): string => {
    if (dims.length <= 1) return `[${values.join(',')}]`;
    const inner = values.length / dims[0];
    return `[${Array.from({ length: dims[0] }, (_, i) => nest(values.slice(i * inner, (i + 1) * inner), dims.slice(1))).join(',')}]`;
  };
  const item = fc.oneof({ weight: 8, arbitrary: numberText() }, { weight: 1, arbitrary: jsonDocument() });
  return fc.oneof(
    fc.array(item, { minLength: count, maxLength: count }).chain((values) => fc.constantFrom(`[${values.join(',')}]`, shape.every((d) => d > 0) ? nest(values, shape) : `[${values.join(',')}]`)),
    fc.array(item, { maxLength: 12 }).map((values) => `[${values.join(',')}]`),
    fc.array(fc.array(item, { maxLength: 4 }), { maxLength: 4 }).map((rows) => `[${rows.map((r) => `[${r.join(',')}]`).join(',')}]`),
    jsonDocument(),
  );
}

const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 });
const datatypeArb = fc.constantFrom('FP32', 'FP32', 'FP32', 'INT64', 'BYTES', 'fp32', '');

/** One input object's JSON text, fields in random order, some missing or of the wrong type. */
function inputText(binarySize?: fc.Arbitrary<number | string>): fc.Arbitrary<string> {
  return shapeArb.chain((shape) =>
    fc
      .record({
        name: fc.oneof(fc.constant('"x"'), fc.constant('"y"'), fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)), jsonDocument()),
        shape: fc.oneof({ weight: 6, arbitrary: fc.constant(JSON.stringify(shape)) }, { weight: 1, arbitrary: jsonDocument() }),
        datatype: fc.oneof({ weight: 6, arbitrary: datatypeArb.map((d) => JSON.stringify(d)) }, { weight: 1, arbitrary: jsonDocument() }),
        data: dataText(shape),
        parameters: binarySize ? binarySize.map((n) => `{"binary_data_size":${n}}`) : fc.oneof(fc.constant('{}'), jsonDocument()),
        extra: jsonDocument(),
      })
      .chain((fields) => fc.shuffledSubarray(Object.entries(fields), { minLength: 2 }))
      .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k === 'extra' ? 'note' : k)}:${v}`).join(',')}}`),
  );
}

/** A whole JSON request's text. */
function requestText(): fc.Arbitrary<string> {
  return fc
    .record({
      inputs: fc.array(inputText(), { minLength: 1, maxLength: 3 }).map((inputs) => `[${inputs.join(',')}]`),
      id: fc.oneof(fc.constant('"r1"'), jsonDocument()),
      outputs: fc.oneof(fc.constant('[{"name":"logits","parameters":{"binary_data":true}}]'), jsonDocument()),
      parameters: fc.oneof(fc.constant('{"binary_data_output":true}'), jsonDocument()),
    })
    .chain((fields) => fc.shuffledSubarray(Object.entries(fields), { minLength: 1 }))
    .map((entries) => `{${entries.map(([k, v]) => `"${k}":${v}`).join(',')}}`);
}

type Mutation = { at: number; kind: 'delete' | 'insert' | 'replace' | 'truncate' | 'repeat'; bytes: Uint8Array; length: number };

/** The text, unchanged or with a few byte-level edits (JSON punctuation favoured). */
function mutated(text: fc.Arbitrary<string>): fc.Arbitrary<Buffer> {
  const punctuation = fc.constantFrom(...'[]{}",:.-+eE0\\ \n'.split('').map((c) => c.charCodeAt(0)), 0x00, 0xff, 0xc3);
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom('delete', 'insert', 'replace', 'truncate', 'repeat'),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }).chain((raw) => fc.oneof(fc.constant(raw), fc.array(punctuation, { minLength: 1, maxLength: 4 }).map((b) => Uint8Array.from(b)))),
    length: fc.integer({ min: 1, max: 8 }),
  });
  return fc.tuple(text, fc.array(mutation, { maxLength: 3 })).map(([t, edits]) => edits.reduce(applyMutation, Buffer.from(t)));
}

function applyMutation(b: Buffer, m: Mutation): Buffer {
  const at = b.length === 0 ? 0 : m.at % b.length;
  switch (m.kind) {
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
    case 'insert':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    case 'replace':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at + m.bytes.length)]);
    case 'truncate':
      return b.subarray(0, at);
    case 'repeat':
      return Buffer.concat([b.subarray(0, at + m.length), b.subarray(at)]);
  }
}

/** A binary-extension body: JSON header, then tensor bytes, with a header length that may lie. */
function binaryBody(): fc.Arbitrary<InferBody> {
  const size = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom('-4', '4.5', '"16"', '1e2', 'null', '{"toString":1}'));
  const header = fc.array(inputText(size), { minLength: 1, maxLength: 2 }).map((inputs) => Buffer.from(`{"inputs":[${inputs.join(',')}]}`));
  const tensorBytes = fc.oneof(
    fc.uint8Array({ maxLength: 96 }).map((b) => Buffer.from(b)),
    fc.array(fc.float(), { maxLength: 24 }).map((values) => Buffer.from(Float32Array.from(values).buffer)),
  );
  return fc.record({ header, tensorBytes, lengthKind: fc.constantFrom('exact', 'exact', 'off', 'spelt'), off: fc.integer({ min: -3, max: 3 }), spelt: fc.constantFrom('', ' 7', '0x10', '1e1', '+5', '-1', '99999999999999999999', 'abc') }).map(
    ({ header, tensorBytes, lengthKind, off, spelt }) => ({
      bytes: Buffer.concat([header, tensorBytes]),
      octetStream: true,
      headerLength: lengthKind === 'exact' ? String(header.length) : lengthKind === 'off' ? String(header.length + off) : spelt,
    }),
  );
}

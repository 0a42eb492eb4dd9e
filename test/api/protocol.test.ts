// KServe request decoding as a pure function: bytes and headers in, tensors or a typed 4xx
// error out. The server tests cover the same paths over HTTP; these pin down the decoder's
// own rules (nesting, counts, limits) with plain inputs.
import { describe, expect, it } from 'vitest';
import { CalibdError } from '../../src/common/index.js';
import { HttpError } from '../../src/api/errors.js';
import { JsonDepthGauge, MAX_BUILT_VALUES, MAX_JSON_DEPTH, readJson } from '../../src/api/json-reader.js';
import { parseInferRequest, type InferBody } from '../../src/api/protocol.js';
import { thrown } from '../helpers/thrown.js';

const json = (value: unknown): InferBody => ({ bytes: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), octetStream: false, headerLength: undefined });
const request = (input: Record<string, unknown>) => json({ inputs: [{ name: 'x', datatype: 'FP32', ...input }] });

/** The typed error a decoding throws, for matching its code and message. */
function refusal(body: InferBody): HttpError {
  return thrown(HttpError, () => parseInferRequest(body));
}

describe('JSON tensor data', () => {
  it('decodes flat data and data nested as its shape to the same tensor', () => {
    const flat = parseInferRequest(request({ shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }));
    const nested = parseInferRequest(request({ shape: [2, 3], data: [[1, 2, 3], [4, 5, 6]] }));
    expect(Array.from(flat.inputs.x.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(nested.inputs.x).toEqual(flat.inputs.x);
    expect(nested.inputs.x.shape).toEqual([2, 3]);
  });

  it('rounds every number as JSON.parse and FP32 would, whatever its spelling', () => {
    const spellings = ['0', '-0', '1e-7', '-2.5E+3', '0.1', '0.30000000000000004', '0.5019608139991760', '123456789012345678', '4.9e-324', '3.4028235e38', '0.000001234567890123456789', '1E22', '7e-45', '16777217', '1.00000005960464477539062'];
    const decoded = parseInferRequest(json(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${spellings.length}],"data":[${spellings.join(',')}]}]}`));
    const expected = Float32Array.from(spellings.map((v) => JSON.parse(v) as number));
    decoded.inputs.x.data.forEach((v, i) => expect(Object.is(v, expected[i]), spellings[i]).toBe(true));
  });

  it.each([
    ['a sub-array longer than its dim', [[1, 2, 3], [4]], /data\[0\] has more than the 2 items the shape has/],
    ['a sub-array shorter than its dim', [[1], [2, 3, 4]], /data\[0\] has 1 items where the shape has 2/],
    ['numbers mixed with arrays', [1, [2, 3], 4], /mixes numbers and arrays: data\[1\] is an array/],
    ['nesting deeper than the shape', [[[1], [2]], [[3], [4]]], /data\[0\]\[0\] is an array where the shape has a number/],
    ['nesting shallower than the shape', [[1, 2, 3, 4]], /data\[0\] has more than the 2 items/],
  ])('refuses ragged data whose count matches the shape: %s', (_name, data, message) => {
    const err = refusal(request({ shape: [2, 2], data }));
    expect(err.code).toBe('shape-mismatch');
    expect(err.status).toBe(400);
    expect(err.oneLine()).toMatch(message);
    expect(err.oneLine()).toMatch(/nest "data" exactly as the shape/);
  });

  it('counts values against the shape before decoding any of them', () => {
    const err = refusal(request({ shape: [1, 2], data: [1, 2, 3] }));
    expect(err).toMatchObject({ code: 'shape-mismatch', value: 3 });
    expect(err.message).toBe("input 'x' has 3 values, shape [1,2] needs 2");
  });

  it('names a value that is not a number', () => {
    expect(refusal(request({ shape: [2], data: [1, { a: [true] }] })).message).toBe(`input 'x' data holds {"a":[true]}, not a number`);
  });

  it('refuses shapes that are not lists of non-negative integers', () => {
    for (const shape of [[-1], [1.5], ['2'], 3]) expect(refusal(request({ shape, data: [1] })).code).toBe('invalid-request');
  });
});

describe('bounded JSON reading', () => {
  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels, pointing at the binary extension`, () => {
    const deep = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${'['.repeat(40)}1${']'.repeat(40)}}]}`;
    const err = refusal(json(deep));
    expect(err.code).toBe('too-deep');
    expect(err.oneLine()).toMatch(/nests JSON deeper than 32 levels .*binary tensor extension/);
    // Deep nesting under a field the decoder never reads is refused all the same.
    expect(refusal(json(`{"extra":${'['.repeat(40)}${']'.repeat(40)},"inputs":[]}`)).code).toBe('too-deep');
  });

  it('gauges depth as chunks arrive, ignoring brackets inside strings and past the JSON part', () => {
    const gauge = new JsonDepthGauge('the body', Infinity);
    const first = Buffer.from(`{"s":"${'['.repeat(100)}\\"[[[",`);
    gauge.feed(first);
    gauge.feed(Buffer.from('['.repeat(MAX_JSON_DEPTH - 1)));
    expect(() => gauge.feed(Buffer.from('['))).toThrow(`deeper than 32 levels (at byte ${first.length + MAX_JSON_DEPTH - 1})`);
    const header = new JsonDepthGauge('the JSON header', 10);
    expect(() => header.feed(Buffer.from(`{"a":[1]}${'['.repeat(100)}`))).not.toThrow();
  });

  it(`builds at most ${MAX_BUILT_VALUES} values outside tensor data`, () => {
    const outputs = Array.from({ length: MAX_BUILT_VALUES }, () => ({ name: 'y' }));
    const err = refusal(json({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }], outputs }));
    expect(err.code).toBe('too-many-values');
    // Tensor data is never built, so a large tensor does not count.
    expect(parseInferRequest(request({ shape: [MAX_BUILT_VALUES * 2], data: Array(MAX_BUILT_VALUES * 2).fill(0) })).inputs.x.data.length).toBe(MAX_BUILT_VALUES * 2);
  });

  it('reads what JSON.parse reads, "__proto__" keys and duplicates included', () => {
    const text = '{"__proto__":{"a":1},"b":[1,"\\u00e9\\n",true,null,-0.5e-3],"b":{"c":"plain"},"d":"é"}';
    expect(readJson(Buffer.from(text))).toEqual(JSON.parse(text));
    expect(Object.getPrototypeOf(readJson(Buffer.from(text)))).toBe(Object.prototype);
  });

  it.each(['', ' ', '{', '{"a"}', '{"a":1,}', '[1,]', '01', '1.', '-', '"\\x"', '"\u0001"', 'tru', '{} {}', '[1 2]', '"\\u12g4"'])('refuses %j as invalid-json', (text) => {
    expect(() => JSON.parse(text)).toThrow();
    try {
      readJson(Buffer.from(text));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CalibdError);
      expect((err as HttpError).code).toBe('invalid-json');
    }
  });

  it('skips fields a request does not use without building them', () => {
    const decoded = parseInferRequest(json({ extra: { huge: Array(MAX_BUILT_VALUES * 2).fill({}) }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [7], note: 'ignored' }] }));
    expect(Array.from(decoded.inputs.x.data)).toEqual([7]);
  });

  it('keeps an input named __proto__ an ordinary input', () => {
    const decoded = parseInferRequest(json('{"inputs":[{"name":"__proto__","datatype":"FP32","shape":[1],"data":[1]}]}'));
    expect(Object.keys(decoded.inputs)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(decoded.inputs)).toBe(Object.prototype);
  });
});

describe('non-finite values', () => {
  it.each(['1e999', '-1e999', '3.5e38', '-1e39'])('refuses %s in JSON data, naming the input and where it sits', (spelling) => {
    const err = refusal(json(`{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[[0,1],[2,${spelling}]]}]}`));
    expect(err.code).toBe('non-finite');
    expect(err.status).toBe(400);
    expect(err.oneLine()).toBe(`input 'x' value 3 (at [1,1]) is ${spelling}, not a finite FP32 number: replace NaN and infinities (and magnitudes beyond ±3.4e38) before sending`);
  });

  it.each([NaN, Infinity, -Infinity])('refuses %s in binary data, naming the input and where it sits', (bad) => {
    const values = new Float32Array([0, 1, 2, 3, 4, 5]);
    values[4] = bad;
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 2], parameters: { binary_data_size: 24 } }] }));
    const err = refusal({ bytes: Buffer.concat([header, Buffer.from(values.buffer)]), octetStream: true, headerLength: String(header.length) });
    expect(err.code).toBe('non-finite');
    expect(err.message).toBe(`input 'x' value 4 (at [2,0]) is ${bad}, not a finite FP32 number`);
  });

  it('keeps the largest finite FP32 values', () => {
    const decoded = parseInferRequest(request({ shape: [2], data: [3.4028234663852886e38, -3.4028234e38] }));
    expect(Array.from(decoded.inputs.x.data)).toEqual([3.4028234663852886e38, -3.4028234663852886e38]);
  });
});

describe('Inference-Header-Content-Length', () => {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }] }));
  const body = (headerLength: string): InferBody => ({ bytes: Buffer.concat([header, Buffer.from(new Float32Array([2]).buffer)]), octetStream: true, headerLength });

  it('accepts plain decimal digits', () => {
    expect(Array.from(parseInferRequest(body(String(header.length))).inputs.x.data)).toEqual([2]);
    expect(Array.from(parseInferRequest(body(`00${header.length}`)).inputs.x.data)).toEqual([2]);
  });

  it.each(['hex', 'octal', 'binary', 'exponent', 'padded', 'signed', 'decimal point', 'empty'])('refuses a %s length', (kind) => {
    const n = header.length;
    const spelling = { hex: `0x${n.toString(16)}`, octal: `0o${n.toString(8)}`, binary: `0b${n.toString(2)}`, exponent: `${n / 10}e1`, padded: ` ${n} `, signed: `+${n}`, 'decimal point': `${n}.0`, empty: '' }[kind]!;
    expect(Number(spelling)).toBe(kind === 'empty' ? 0 : n);
    const err = refusal(body(spelling));
    expect(err.code).toBe('invalid-binary-header');
    expect(err.message).toBe(`Inference-Header-Content-Length '${spelling}' is not a decimal byte count`);
  });
});

// Found by test/fuzz/kserve.fuzz.test.ts.
describe('fuzzing finds', () => {
  it('a binary_data_size object whose "toString" is not a function is a 400, not a TypeError', () => {
    const header = Buffer.from('{"inputs":[{"name":">","parameters":{"binary_data_size":{"toString":1}},"shape":[],"datatype":"INT64"}]}');
    const err = refusal({ bytes: header, octetStream: true, headerLength: String(header.length) });
    expect(err.code).toBe('binary-size');
    expect(err.message).toBe(`input '>' has binary_data_size {"toString":1}, not a byte count`);
  });

  it('quotes body bytes, names and values on one line, escaped and cut short', () => {
    const badJson = refusal({ bytes: Buffer.concat([Buffer.from([0xff]), Buffer.from('\noutputs":0}')]), octetStream: false, headerLength: undefined });
    expect(badJson.code).toBe('invalid-json');
    expect(badJson.message).toBe(`the body is not valid JSON: expected a value at byte 0, found '\ufffd\\u000aoutputs":0}'`);
    const name = `a\nb${'c'.repeat(100)}`;
    const err = refusal(json({ inputs: [{ name, datatype: 'FP32', shape: [2], data: [1] }] }));
    expect(err.message).toBe(`input 'a\\u000ab${'c'.repeat(37)}…' has 1 values, shape [2] needs 2`);
  });
});

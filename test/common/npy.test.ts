import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError, encodeNpy, parseNpy, readNpy, writeNpy, type NpyData } from '../../src/common/index.js';
import { thrown } from '../helpers/thrown.js';

/** Builds .npy bytes by hand, so the error cases need no NumPy. */
function handMade(dict: string, data: Uint8Array, major = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const padded = dict.padEnd(Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(prefix + padded.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, padded.length, true);
  else view.setUint32(8, padded.length, true);
  for (let i = 0; i < padded.length; i++) out[prefix + i] = padded.charCodeAt(i);
  out.set(data, prefix + padded.length);
  return out;
}

function errorOf(fn: () => unknown): DataError {
  return thrown(DataError, fn);
}

const tmp = () => mkdtempSync(join(tmpdir(), 'calibd-npy-'));

describe('npy round trips', () => {
  const cases: Array<[string, NpyData, number[]]> = [
    ['float32', new Float32Array([0, 1.5, -2.25, 3.4028234663852886e38, Number.NaN, 1e-45]), [2, 3]],
    ['float64', new Float64Array([Math.PI, -0, Number.POSITIVE_INFINITY]), [3]],
    ['int64', new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, 42n]), [2, 1, 2]],
    ['int32', new Int32Array([-(2 ** 31), 2 ** 31 - 1, 7]), [3, 1]],
    ['uint8', new Uint8Array([0, 128, 255]), [3]],
    ['int8', new Int8Array([-128, 0, 127, -1]), [4]],
  ];
  for (const [dtype, data, shape] of cases) {
    it(`${dtype} survives encode and parse`, () => {
      const back = parseNpy(encodeNpy(data, shape));
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual(shape);
      expect(back.data.constructor).toBe(data.constructor);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
    });
  }

  it('writes bool on request and reads it as 0/1 bytes', () => {
    const back = parseNpy(encodeNpy(new Uint8Array([1, 0, 1]), [3], { dtype: 'bool' }));
    expect(back.dtype).toBe('bool');
    expect(Array.from(back.data as Uint8Array)).toEqual([1, 0, 1]);
    expect(() => encodeNpy(new Uint8Array([2]), [1], { dtype: 'bool' })).toThrow(DataError);
  });

  it('handles scalars and empty arrays', () => {
    const scalar = parseNpy(encodeNpy(new Float64Array([42]), []));
    expect(scalar.shape).toEqual([]);
    expect(scalar.data[0]).toBe(42);
    const empty = parseNpy(encodeNpy(new Float32Array(0), [0, 3]));
    expect(empty.shape).toEqual([0, 3]);
    expect(empty.data.length).toBe(0);
  });

  it('writes the header NumPy writes: version 1.0, 64-byte aligned, newline-terminated', () => {
    const bytes = encodeNpy(new Float32Array(6), [2, 3]);
    expect(bytes[6]).toBe(1);
    const headerLen = bytes[8] | (bytes[9] << 8);
    expect((10 + headerLen) % 64).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLen));
    expect(header.startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")).toBe(true);
    expect(header.endsWith('\n')).toBe(true);
    expect(new TextDecoder().decode(encodeNpy(new Int32Array(5), [5]).subarray(10, 70))).toContain("'shape': (5,)");
  });

  it('reads data that does not start on an aligned offset of a shared buffer', () => {
    const inner = encodeNpy(new Float64Array([1, 2, 3]), [3]);
    const big = Buffer.alloc(inner.length + 3, 0xff);
    big.set(inner, 3);
    const back = parseNpy(big.subarray(3));
    expect(Array.from(back.data as Float64Array)).toEqual([1, 2, 3]);
  });

  it('reads format 2.0 and the Python 2 long suffix', () => {
    const data = new Uint8Array(new Int32Array([5, 6]).buffer);
    const v2 = parseNpy(handMade("{'descr': '<i4', 'fortran_order': False, 'shape': (2L,), }", data, 2));
    expect(v2.shape).toEqual([2]);
    expect(Array.from(v2.data as Int32Array)).toEqual([5, 6]);
  });

  it('encodes byte for byte what numpy.save writes', () => {
    // numpy 2.x: np.save(f, np.arange(3, dtype=np.int64)) gives this header, padded to 64 bytes.
    const numpyBytes = handMade("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(new BigInt64Array([0n, 1n, 2n]).buffer));
    expect(Array.from(encodeNpy(new BigInt64Array([0n, 1n, 2n]), [3]))).toEqual(Array.from(numpyBytes));
  });

  it('writeNpy writes atomically and readNpy reads it back', () => {
    const dir = tmp();
    const path = join(dir, 'x.npy');
    writeNpy(path, new Float32Array([1, 2, 3, 4]), [1, 2, 2]);
    writeNpy(path, new Float32Array([5, 6]), [2]); // overwrite in place
    expect(readdirSync(dir)).toEqual(['x.npy']);
    const back = readNpy(path);
    expect(back.shape).toEqual([2]);
    expect(Array.from(back.data as Float32Array)).toEqual([5, 6]);
  });

  it('refuses data that does not match the shape when encoding', () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 3])).toThrow(DataError);
    expect(() => encodeNpy(new Float32Array(2), [-2])).toThrow(DataError);
    expect(() => encodeNpy(new Float32Array(2), [2], { dtype: 'int32' })).toThrow(DataError);
  });
});

describe('npy errors name the file and say what to do', () => {
  const f4 = new Uint8Array(new Float32Array([1, 2, 3]).buffer);

  it('not an npy file', () => {
    const dir = tmp();
    const path = join(dir, 'notes.npy');
    writeFileSync(path, 'hello, this is text');
    const err = errorOf(() => readNpy(path));
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/not a NumPy \.npy file/);
    expect(err.hint).toMatch(/numpy\.save/);
    expect(err.code).toBe('data');
  });

  it('missing file', () => {
    const path = join(tmp(), 'missing.npy');
    const err = errorOf(() => readNpy(path));
    expect(err.message).toContain(path);
  });

  it('big-endian', () => {
    const err = errorOf(() => parseNpy(handMade("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", f4), 'be.npy'));
    expect(err.message).toContain('be.npy');
    expect(err.message).toMatch(/big-endian/);
    expect(err.hint).toMatch(/newbyteorder/);
  });

  it('one-byte types ignore the byte-order mark', () => {
    const a = parseNpy(handMade("{'descr': '>u1', 'fortran_order': False, 'shape': (2,), }", new Uint8Array([3, 4])));
    expect(a.dtype).toBe('uint8');
  });

  it('Fortran order', () => {
    const err = errorOf(() => parseNpy(handMade("{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", f4), 'f.npy'));
    expect(err.message).toMatch(/f\.npy: .*Fortran/);
    expect(err.hint).toMatch(/ascontiguousarray/);
  });

  it('unsupported dtype', () => {
    for (const descr of ['<f2', '<U8', '<c8', '|O']) {
      const err = errorOf(() => parseNpy(handMade(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`, f4), 'd.npy'));
      expect(err.message).toContain(`unsupported dtype '${descr}'`);
      expect(err.hint).toContain('float32');
    }
  });

  it('structured dtype (a list descr) is a malformed header', () => {
    const err = errorOf(() => parseNpy(handMade("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", f4)));
    expect(err.message).toMatch(/descr|dtype/);
  });

  it('truncated data', () => {
    const full = encodeNpy(new Float32Array([1, 2, 3, 4]), [4]);
    const err = errorOf(() => parseNpy(full.subarray(0, full.length - 2), 'cut.npy'));
    expect(err.message).toMatch(/cut\.npy: truncated data/);
    expect(err.message).toContain('needs 16 bytes');
    expect(err.hint).toMatch(/write it again/);
  });

  it('truncated header', () => {
    const full = encodeNpy(new Float32Array([1]), [1]);
    expect(() => parseNpy(full.subarray(0, 40), 'h.npy')).toThrow(/h\.npy: truncated \.npy header/);
  });

  it('extra bytes after the data', () => {
    const full = encodeNpy(new Float32Array([1]), [1]);
    const longer = new Uint8Array(full.length + 4);
    longer.set(full);
    expect(() => parseNpy(longer, 'x.npy')).toThrow(/4 bytes after the data/);
  });

  it('unknown format version', () => {
    const bytes = encodeNpy(new Float32Array([1]), [1]);
    bytes[6] = 9;
    expect(() => parseNpy(bytes)).toThrow(/format version 9\.0/);
  });
});

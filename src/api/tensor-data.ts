// Request tensor data to the Float32Array the engine runs on. JSON data is decoded straight
// from the body's bytes once its value count matches the declared shape, so nothing larger
// than the tensor itself is allocated; nested data must follow the shape exactly. Values
// that are not finite FP32 numbers are refused, naming where they sit: a NaN would otherwise
// run through the model silently (all-NaN input gave the same logits as all zeros).

import { endianness } from 'node:os';
import { printable } from '../common/errors.js';
import { HttpError } from './errors.js';
import { JSON_BYTE, type JsonSpan, isDigit, isJsonWhitespace, sourceSnippet } from './json-reader.js';

const { LBRACKET, RBRACKET, MINUS, DOT, LOWER_E, UPPER_E, PLUS, ZERO } = JSON_BYTE;

// Every supported box (ARM64, x86) is little-endian; the byte swap keeps a big-endian host correct rather than fast.
export const littleEndianHost = endianness() === 'LE';

/** 10^0 … 10^22: the powers of ten a double holds exactly. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Relative error bound, with room to spare, of a double computed from a mantissa of up to 19 digits. */
const QUICK_FLOAT32_MARGIN = 2 ** -48;

/**
 * The float32 that JSON.parse followed by FP32 rounding gives for mantissa × 10^scale, or
 * NaN when a quick double computation cannot be sure of it (the caller then parses the text).
 */
export function quickFloat32(mantissa: number, digits: number, scale: number): number {
  if (digits > 19 || scale < -22 || scale > 22) return NaN;
  const approx = scale < 0 ? mantissa / EXACT_POWERS_OF_TEN[-scale] : mantissa * EXACT_POWERS_OF_TEN[scale];
  // Up to 15 digits the mantissa is exact, and one IEEE operation on exact operands rounds
  // correctly: this is JSON.parse's own double.
  if (digits <= 15) return Math.fround(approx);
  // A longer mantissa was rounded on the way in. The result still stands when every value
  // within the error bound rounds to the same float32, as rounding is monotonic.
  const low = Math.fround(approx * (1 - QUICK_FLOAT32_MARGIN));
  const high = Math.fround(approx * (1 + QUICK_FLOAT32_MARGIN));
  return low === high ? low : NaN;
}

const NESTING_HINT = 'nest "data" exactly as the shape (every sub-array as long as its dim), or send it flat in row-major order';

/** A shape (or a position in one) as messages show it; a client's shape may have thousands of dims. */
function shapeText(dims: readonly number[]): string {
  return `[${printable(dims.join(','))}]`;
}

/** Values a shape holds (dims are checked non-negative integers before this). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** JSON tensor data, skipped earlier as `span`, decoded once it fits `shape`. */
export function float32FromJson(bytes: Buffer, span: JsonSpan, name: string, shape: readonly number[]): Float32Array {
  if (span.strayAt >= 0) {
    const stray = sourceSnippet(bytes, span.strayAt, span.strayEnd);
    throw new HttpError('invalid-request', `input '${name}' data holds ${stray}, not a number`, { value: stray, hint: 'send "data" as numbers' });
  }
  const count = elementCount(shape);
  if (span.numbers !== count) {
    throw new HttpError('shape-mismatch', `input '${name}' has ${span.numbers} values, shape ${shapeText(shape)} needs ${count}`, {
      value: span.numbers,
      hint: 'send exactly as many values as the shape declares',
    });
  }
  const out = new Float32Array(count);
  new JsonDataDecoder(bytes, name, shape, out).decode(span);
  return out;
}

/** Binary-extension bytes of one FP32 input (little-endian), checked against `shape`. */
export function float32FromBinary(bytes: Buffer, name: string, shape: readonly number[]): Float32Array {
  const count = elementCount(shape);
  if (bytes.length !== count * 4) {
    throw new HttpError('binary-size', `input '${name}' has ${bytes.length} binary bytes, shape ${shapeText(shape)} needs ${count * 4} (${count} FP32 values)`, {
      value: bytes.length,
      hint: 'set binary_data_size to 4 bytes per value of the shape',
    });
  }
  // Copy: the body's offset need not be 4-byte aligned, and the body buffer is pooled.
  const out = new Float32Array(count);
  if (littleEndianHost) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < count; i++) out[i] = bytes.readFloatLE(i * 4);
  const bad = firstNonFinite(out);
  if (bad >= 0) throw nonFiniteError(name, shape, bad, String(out[bad]));
  return out;
}

function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and ±Infinity.
    if (data[i] - data[i] !== 0) return i;
  }
  return -1;
}

function nonFiniteError(name: string, shape: readonly number[], index: number, text: string): HttpError {
  return new HttpError('non-finite', `input '${name}' value ${index} (at ${shapeText(unflatten(shape, index))}) is ${printable(text)}, not a finite FP32 number`, {
    value: printable(text),
    hint: 'replace NaN and infinities (and magnitudes beyond ±3.4e38) before sending',
  });
}

/** The row-major position of flat `index` in `shape`. */
function unflatten(shape: readonly number[], index: number): number[] {
  const at = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    at[d] = index % shape[d];
    index = Math.floor(index / shape[d]);
  }
  return at;
}

/**
 * Walks one JSON data array whose syntax and count are already checked, checking its nesting
 * against the shape and writing each number to `out` in order. Flat data is walked as
 * data nested by the one-dim shape [count].
 */
class JsonDataDecoder {
  private written = 0;
  private flat = false;
  private levels: readonly number[];
  /** Items seen so far in each open array, outermost first. */
  private items: number[] = [];

  constructor(
    private readonly bytes: Buffer,
    private readonly name: string,
    private readonly shape: readonly number[],
    private readonly out: Float32Array,
  ) {
    this.levels = shape;
  }

  decode(span: JsonSpan): void {
    // Rank 0 and flat data are both walked as one array of `count` numbers.
    this.flat = this.shape.length === 0 || this.firstItem(span.start) !== LBRACKET;
    this.levels = this.flat ? [this.out.length] : this.shape;
    const b = this.bytes;
    let level = -1;
    for (let p = span.start; p < span.end; ) {
      const c = b[p];
      if (c === LBRACKET) {
        if (level >= 0) this.countItem(level, true);
        this.items[++level] = 0;
        p++;
      } else if (c === RBRACKET) {
        if (this.items[level] !== this.levels[level]) throw this.nestingError(level, `has ${this.items[level]} items where the shape has ${this.levels[level]}`);
        level--;
        p++;
      } else if (c === MINUS || isDigit(c)) {
        this.countItem(level, false);
        p = this.number(p);
      } else {
        // Commas and whitespace: the syntax was checked when the span was skipped.
        p++;
      }
    }
  }

  private firstItem(start: number): number {
    let p = start + 1;
    while (isJsonWhitespace(this.bytes[p])) p++;
    return this.bytes[p];
  }

  /** One more item in the array open at `level`: an array or a number, as the shape says. */
  private countItem(level: number, isArray: boolean): void {
    const n = ++this.items[level];
    if (n > this.levels[level]) throw this.nestingError(level, `has more than the ${this.levels[level]} items the shape has`);
    const wantArray = level < this.levels.length - 1;
    if (isArray && !wantArray) throw this.nestingError(level + 1, 'is an array where the shape has a number');
    if (!isArray && wantArray) throw this.nestingError(level + 1, `is a number where the shape has an array of ${this.levels[level + 1]}`);
  }

  /** Decodes the number literal at `p` into the next element and returns its end. */
  private number(p: number): number {
    const b = this.bytes;
    const start = p;
    const negative = b[p] === MINUS;
    if (negative) p++;
    // The literal as mantissa × 10^scale; `digits` counts significant digits only.
    let mantissa = 0;
    let digits = 0;
    let scale = 0;
    for (; isDigit(b[p]); p++) {
      mantissa = mantissa * 10 + (b[p] - ZERO);
      if (mantissa !== 0) digits++;
    }
    if (b[p] === DOT) {
      for (p++; isDigit(b[p]); p++, scale--) {
        mantissa = mantissa * 10 + (b[p] - ZERO);
        if (mantissa !== 0) digits++;
      }
    }
    if (b[p] === LOWER_E || b[p] === UPPER_E) {
      p++;
      const sign = b[p] === MINUS ? -1 : 1;
      if (b[p] === MINUS || b[p] === PLUS) p++;
      let exponent = 0;
      // Capped: past 10^4 the exponent only has to be far outside the quick path's range.
      for (; isDigit(b[p]); p++) if (exponent < 10_000) exponent = exponent * 10 + (b[p] - ZERO);
      scale += sign * exponent;
    }
    let value = quickFloat32(mantissa, digits, scale);
    if (Number.isNaN(value)) value = Number(b.toString('latin1', negative ? start + 1 : start, p));
    const i = this.written++;
    this.out[i] = negative ? -value : value;
    // JSON has no NaN, but 1e999 parses as Infinity and 1e39 overflows FP32.
    if (!Number.isFinite(this.out[i])) throw nonFiniteError(this.name, this.shape, i, b.toString('latin1', start, p));
    return p;
  }

  /** A nesting error about the item whose path is the first `depth` open arrays' positions. */
  private nestingError(depth: number, problem: string): HttpError {
    const path = `data${this.items.slice(0, depth).map((n) => `[${n - 1}]`).join('')}`;
    const what = this.flat ? `mixes numbers and arrays: ${path}` : path;
    return new HttpError('shape-mismatch', `input '${this.name}' ${printable(what)} ${problem} (shape ${shapeText(this.shape)})`, { value: path, hint: NESTING_HINT });
  }
}

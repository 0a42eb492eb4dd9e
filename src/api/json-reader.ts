// A JSON reader over raw request bytes that builds only what its caller asks for.
// JSON.parse builds the whole object graph before anything can be checked: 8 MiB of nested
// brackets become millions of arrays and a gigabyte of heap. This reader bounds nesting
// depth and the number of values it builds, and can skip a value (checking its syntax and
// counting its numbers) so tensor data is decoded later, straight from its bytes, once its
// declared shape is known.

import { printable } from '../common/errors.js';
import { HttpError } from './errors.js';

/** Deepest nesting followed: a request's own structure takes 4 levels, nested tensor data one per dim. */
export const MAX_JSON_DEPTH = 32;
/** Most values built (names, shapes, parameters); tensor data is never built, only skipped. */
export const MAX_BUILT_VALUES = 10_000;

export const BINARY_EXTENSION_HINT = 'send large tensors with the binary tensor extension (application/octet-stream and Inference-Header-Content-Length)';

const TAB = 0x09, LF = 0x0a, CR = 0x0d, SPACE = 0x20;
const QUOTE = 0x22, COMMA = 0x2c, MINUS = 0x2d, PLUS = 0x2b, DOT = 0x2e, COLON = 0x3a, BACKSLASH = 0x5c;
const ZERO = 0x30, ONE = 0x31, NINE = 0x39;
const LBRACKET = 0x5b, RBRACKET = 0x5d, LBRACE = 0x7b, RBRACE = 0x7d;
const LOWER_E = 0x65, UPPER_E = 0x45, LOWER_U = 0x75;
/** Characters allowed after a backslash besides 'u': " \ / b f n r t. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/** Bytes the request and tensor-data decoders look for. */
export const JSON_BYTE = { LBRACKET, RBRACKET, LBRACE, COMMA, MINUS, DOT, LOWER_E, UPPER_E, PLUS, ZERO } as const;

/** A value the reader skipped: where it lies in the bytes and what it holds. */
export class JsonSpan {
  /** Numbers anywhere inside. */
  numbers = 0;
  /** Offsets of the first value inside that is neither a number nor an array; -1 if none. */
  strayAt = -1;
  strayEnd = -1;
  end = 0;
  constructor(readonly start: number) {}
}

export function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

export function isJsonWhitespace(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

/** The source from `at` (to `end` at most), as an error message may quote it. */
export function sourceSnippet(bytes: Buffer, at: number, end = bytes.length): string {
  // A few bytes past the 40 characters printable() keeps, so it can tell the text was cut.
  return printable(bytes.toString('utf8', at, Math.min(end, at + 44)));
}

export class JsonReader {
  private pos = 0;
  private built = 0;

  /** `what` names the bytes in error messages: "the body", "the JSON header". */
  constructor(
    readonly bytes: Buffer,
    readonly what: string,
  ) {}

  /** Reads a whole document with `read`, then requires nothing but whitespace after it. */
  static document<T>(bytes: Buffer, what: string, read: (r: JsonReader) => T): T {
    const reader = new JsonReader(bytes, what);
    const value = read(reader);
    if (reader.peek() !== -1) throw reader.syntaxError('the end');
    return value;
  }

  /** The next significant byte, -1 at the end. */
  peek(): number {
    const b = this.bytes;
    let p = this.pos;
    while (p < b.length && isJsonWhitespace(b[p])) p++;
    this.pos = p;
    return p < b.length ? b[p] : -1;
  }

  /** Builds the next value as JSON.parse would. `depth` counts the containers around it. */
  build(depth: number): unknown {
    this.noteBuilt();
    const c = this.peek();
    if (c === LBRACE) {
      const obj: Record<string, unknown> = {};
      this.readObject(depth, (key) => setOwn(obj, key, this.build(depth + 1)));
      return obj;
    }
    if (c === LBRACKET) {
      const arr: unknown[] = [];
      this.readArray(depth, () => arr.push(this.build(depth + 1)));
      return arr;
    }
    return this.readScalar();
  }

  /** Checks the next value's syntax without building it, and says where it lies. */
  skip(depth: number): JsonSpan {
    this.peek();
    const span = new JsonSpan(this.pos);
    this.skipInto(depth, span);
    span.end = this.pos;
    return span;
  }

  /** Counts one value against MAX_BUILT_VALUES; callers that build their own containers call it too. */
  noteBuilt(): void {
    if (++this.built > MAX_BUILT_VALUES) {
      throw new HttpError('too-many-values', `${this.what} has more than ${MAX_BUILT_VALUES} JSON values outside tensor "data"`, {
        value: this.pos,
        hint: `a KServe request needs far fewer; ${BINARY_EXTENSION_HINT}`,
      });
    }
  }

  /** Reads an object; `onMember(key)` must consume the member's value. */
  readObject(depth: number, onMember: (key: string) => void): void {
    this.members(depth, true, onMember);
  }

  /** Reads an array; `onItem()` must consume each item. */
  readArray(depth: number, onItem: () => void): void {
    this.enter(depth);
    if (this.peek() === RBRACKET) {
      this.pos++;
      return;
    }
    for (;;) {
      onItem();
      if (this.closes(RBRACKET, "',' or ']'")) return;
    }
  }

  /** Object members; keys are only checked, not decoded, unless `decodeKeys`. */
  private members(depth: number, decodeKeys: boolean, onMember: (key: string) => void): void {
    this.enter(depth);
    if (this.peek() === RBRACE) {
      this.pos++;
      return;
    }
    for (;;) {
      if (this.peek() !== QUOTE) throw this.syntaxError('a quoted key');
      let key = '';
      if (decodeKeys) key = this.readString();
      else this.pos = this.scanString(this.pos).end;
      if (this.peek() !== COLON) throw this.syntaxError("':'");
      this.pos++;
      onMember(key);
      if (this.closes(RBRACE, "',' or '}'")) return;
    }
  }

  /** After an item: true at the closing byte, false at a comma; both consumed. */
  private closes(closing: number, expected: string): boolean {
    const c = this.peek();
    if (c !== COMMA && c !== closing) throw this.syntaxError(expected);
    this.pos++;
    return c === closing;
  }

  private syntaxError(expected: string): HttpError {
    const found = this.pos < this.bytes.length ? `'${sourceSnippet(this.bytes, this.pos)}'` : 'the end';
    return new HttpError('invalid-json', `${this.what} is not valid JSON: expected ${expected} at byte ${this.pos}, found ${found}`, {
      value: this.pos,
      hint: 'send one JSON object (check it with a JSON parser such as jq)',
    });
  }

  /** Steps into the container at `pos`; it sits inside `depth` others. */
  private enter(depth: number): void {
    if (depth >= MAX_JSON_DEPTH) throw tooDeepError(this.what, this.pos);
    this.pos++;
  }

  private skipInto(depth: number, span: JsonSpan): void {
    const c = this.peek();
    if (c === LBRACKET) {
      this.readArray(depth, () => this.skipInto(depth + 1, span));
    } else if (c === MINUS || isDigit(c)) {
      this.pos = this.scanNumber(this.pos);
      span.numbers++;
    } else {
      const first = span.strayAt < 0;
      if (first) span.strayAt = this.pos;
      if (c === LBRACE) this.members(depth, false, () => this.skipInto(depth + 1, span));
      else if (c === QUOTE) this.pos = this.scanString(this.pos).end;
      else this.readLiteral();
      if (first) span.strayEnd = this.pos;
    }
  }

  private readScalar(): unknown {
    const c = this.peek();
    if (c === QUOTE) return this.readString();
    if (c === MINUS || isDigit(c)) {
      const start = this.pos;
      this.pos = this.scanNumber(start);
      return Number(this.bytes.toString('latin1', start, this.pos));
    }
    return this.readLiteral();
  }

  private readString(): string {
    const start = this.pos;
    const { end, plain } = this.scanString(start);
    this.pos = end;
    // Escapes and non-ASCII text are decoded by JSON.parse itself, on this one checked literal.
    return plain ? this.bytes.toString('latin1', start + 1, end - 1) : (JSON.parse(this.bytes.toString('utf8', start, end)) as string);
  }

  private readLiteral(): boolean | null {
    for (const [text, value] of LITERALS) {
      if (this.startsWith(text)) {
        this.pos += text.length;
        return value;
      }
    }
    throw this.syntaxError('a value');
  }

  private startsWith(text: string): boolean {
    if (this.pos + text.length > this.bytes.length) return false;
    for (let i = 0; i < text.length; i++) if (this.bytes[this.pos + i] !== text.charCodeAt(i)) return false;
    return true;
  }

  /** End of the string literal starting at `start`, and whether it is plain ASCII without escapes. */
  private scanString(start: number): { end: number; plain: boolean } {
    const b = this.bytes;
    let plain = true;
    let p = start + 1;
    for (;;) {
      if (p >= b.length) {
        this.pos = p;
        throw this.syntaxError("'\"' closing the string");
      }
      const c = b[p];
      if (c === QUOTE) return { end: p + 1, plain };
      if (c < SPACE) {
        this.pos = p;
        throw this.syntaxError('no control characters inside a string (escape them)');
      }
      if (c === BACKSLASH) {
        plain = false;
        p = this.escapeEnd(p);
        continue;
      }
      if (c >= 0x80) plain = false;
      p++;
    }
  }

  /** End of the escape sequence at `p` (a backslash). */
  private escapeEnd(p: number): number {
    const b = this.bytes;
    const e = b[p + 1];
    if (SIMPLE_ESCAPES.has(e)) return p + 2;
    if (e === LOWER_U) {
      for (let i = p + 2; i < p + 6; i++) {
        if (!isHexDigit(b[i])) {
          this.pos = i;
          throw this.syntaxError('four hex digits after \\u');
        }
      }
      return p + 6;
    }
    this.pos = p + 1;
    throw this.syntaxError('an escape (one of " \\ / b f n r t u) after \\');
  }

  /** End of the number literal starting at `start`, per JSON's grammar. */
  private scanNumber(start: number): number {
    const b = this.bytes;
    let p = start;
    if (b[p] === MINUS) p++;
    if (b[p] === ZERO) p++;
    else if (b[p] >= ONE && b[p] <= NINE) p = digitsEnd(b, p);
    else return this.numberError(p);
    if (b[p] === DOT) {
      if (!isDigit(b[p + 1])) return this.numberError(p + 1);
      p = digitsEnd(b, p + 1);
    }
    if (b[p] === LOWER_E || b[p] === UPPER_E) {
      p++;
      if (b[p] === PLUS || b[p] === MINUS) p++;
      if (!isDigit(b[p])) return this.numberError(p);
      p = digitsEnd(b, p);
    }
    return p;
  }

  private numberError(p: number): never {
    this.pos = p;
    throw this.syntaxError('a digit');
  }
}

function tooDeepError(what: string, at: number): HttpError {
  return new HttpError('too-deep', `${what} nests JSON deeper than ${MAX_JSON_DEPTH} levels (at byte ${at})`, {
    value: at,
    hint: `nest tensor data only as deep as its shape, or send it flat; ${BINARY_EXTENSION_HINT}`,
  });
}

/**
 * Follows JSON nesting across the chunks of a body as they arrive, so a body nested too deep
 * is refused at its first kilobytes rather than after all of it has been buffered. It only
 * tracks strings and brackets; the reader still checks everything once the body is whole.
 */
export class JsonDepthGauge {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private seen = 0;

  /** Gauges the first `jsonBytes` bytes of the body (the rest is binary tensor data). */
  constructor(
    private readonly what: string,
    private readonly jsonBytes: number,
  ) {}

  feed(chunk: Uint8Array): void {
    const n = Math.min(chunk.length, this.jsonBytes - this.seen);
    for (let i = 0; i < n; i++) {
      const c = chunk[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
      } else if (c === QUOTE) {
        this.inString = true;
      } else if (c === LBRACKET || c === LBRACE) {
        if (++this.depth > MAX_JSON_DEPTH) throw tooDeepError(this.what, this.seen + i);
      } else if (c === RBRACKET || c === RBRACE) {
        this.depth--;
      }
    }
    this.seen += Math.max(n, 0);
  }
}

const LITERALS: [string, boolean | null][] = [
  ['true', true],
  ['false', false],
  ['null', null],
];

function digitsEnd(b: Buffer, p: number): number {
  while (isDigit(b[p])) p++;
  return p;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Assigns like JSON.parse: an own data property even for "__proto__", the last duplicate winning. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Builds a whole JSON document within the reader's limits. */
export function readJson(bytes: Buffer, what = 'the body'): unknown {
  return JsonReader.document(bytes, what, (r) => r.build(0));
}

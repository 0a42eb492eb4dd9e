// Typed errors shared by every module. Each carries the offending value and a hint that
// says what to do, so the CLI and the HTTP API can print one clear line.

export class CalibdError extends Error {
  /** Machine-readable kind, stable across releases (used in API and MQTT error payloads). */
  readonly code: string;
  /** What the user can do about it. */
  readonly hint: string;
  /** The value that caused the error (a path, a key, a shape …). */
  readonly value: unknown;

  constructor(code: string, message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint ?? '';
    this.value = opts.value;
  }

  /** One line for a terminal or a log: message, then the hint. */
  oneLine(): string {
    return this.hint ? `${this.message}: ${this.hint}` : this.message;
  }
}

/** The model file cannot be read, parsed or handled. */
export class ModelError extends CalibdError {
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('model', message, opts);
  }
}

/** Input data (samples, tensors, .npy files) does not fit what the model expects. */
export class DataError extends CalibdError {
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('data', message, opts);
  }
}

/** A caller passed an option that is out of range or unknown. */
export class OptionError extends CalibdError {
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('option', message, opts);
  }
}

/** The state directory (calibd.db, model files) cannot be opened, read or written. */
export class StateError extends CalibdError {
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('state', message, opts);
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof CalibdError) return err.oneLine();
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Longest stretch of a caller's value quoted in an error message. */
const PRINTABLE_CHARS = 40;

/**
 * A caller's text as it may appear inside a one-line error: control and line-separator
 * characters escaped, cut to 40 characters.
 */
export function printable(text: string): string {
  const cut = text.length > PRINTABLE_CHARS ? `${text.slice(0, PRINTABLE_CHARS)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A value parsed from JSON as it may appear inside a one-line error: its JSON text, printable. */
export function printableJson(value: unknown): string {
  return printable(JSON.stringify(value) ?? String(value));
}

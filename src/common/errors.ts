// Typed errors shared by every module, and the one catalogue of their codes. Each error
// carries the offending value and a hint that says what to do, so the CLI, the HTTP API and
// the MQTT commands can print one clear line; its code is one of ERROR_CATALOGUE's keys,
// which is where the HTTP status comes from, so HTTP and MQTT answer a failure with the
// same code and no layer decides a status on its own.

/** What a code means, what a caller can do about it, and the HTTP status it is answered with. */
export interface CatalogueEntry {
  status: number;
  meaning: string;
  action: string;
}

/**
 * Every error code calibd answers with. Codes are stable across releases (clients match on
 * them); messages may be reworded. 4xx: the caller can fix the request; 5xx: calibd could
 * not do what was asked, and the request may succeed later or after an operator acts.
 * README.md ("Error codes") lists the same table; a test keeps the two in step.
 */
export const ERROR_CATALOGUE = {
  // Arguments and inputs: the caller's to fix.
  option: { status: 400, meaning: 'an argument or option is unknown or out of range', action: 'fix the named field' },
  config: { status: 400, meaning: 'a config key or value is invalid', action: 'fix the named key' },
  data: { status: 400, meaning: 'input data does not fit what the model expects', action: 'send data of the model\'s shape and type' },
  request: { status: 400, meaning: 'an inference or MQTT request does not fit the model or the protocol', action: 'fix the request as the message says' },
  'invalid-json': { status: 400, meaning: 'the body or payload is not JSON, or not a JSON object', action: 'send a JSON object' },
  'too-deep': { status: 400, meaning: 'JSON nested deeper than the reader follows', action: 'send flat tensor data' },
  'too-many-values': { status: 400, meaning: 'more JSON values outside tensor data than a request needs', action: 'send only the request\'s fields' },
  'invalid-request': { status: 400, meaning: 'JSON that is not a KServe v2 request (missing or mistyped fields)', action: 'follow the KServe v2 request format' },
  'invalid-binary-header': { status: 400, meaning: 'Inference-Header-Content-Length missing, malformed or beyond the body', action: 'send the JSON header length' },
  'binary-size': { status: 400, meaning: 'binary_data_size disagrees with the bytes sent', action: 'send as many bytes as declared' },
  'shape-mismatch': { status: 400, meaning: 'tensor data whose count or nesting differs from the declared shape', action: 'send shape-many values' },
  'non-finite': { status: 400, meaning: 'NaN or ±Infinity in tensor data', action: 'send finite values' },
  'invalid-image': { status: 400, meaning: 'a BYTES input that is not a readable JPEG/PNG/WebP image, or a daemon with no preprocessing configured', action: 'send the image file bytes, and set preprocess in the config' },
  'bad-request': { status: 400, meaning: 'a malformed HTTP request, refused before any route saw it', action: 'send HTTP/1.1' },
  unauthorized: { status: 401, meaning: 'missing or wrong bearer token, or an unsigned mutating MQTT command', action: 'send the token, or sign the command' },
  'unknown-model': { status: 404, meaning: 'no such model or model version is served', action: 'use the served name and version' },
  'no-route': { status: 404, meaning: 'no such HTTP route', action: 'see GET /v2' },
  'unknown-command': { status: 404, meaning: 'no such admin command', action: 'use one of the listed commands' },
  'request-timeout': { status: 408, meaning: 'the request did not arrive within http.requestTimeoutMs', action: 'send the whole request at once' },
  'model-mismatch': { status: 409, meaning: 'statistics or a fleet calibration made for another model or calibration settings', action: 'send those of the model the device serves (same SHA-256 and settings)' },
  'no-calibration': { status: 409, meaning: 'the device serves FP32: there is no calibration to export', action: 'recalibrate first' },
  'no-samples': { status: 409, meaning: 'the sample buffer is empty: nothing to calibrate from', action: 'send inference requests first' },
  'body-too-large': { status: 413, meaning: 'the body is larger than http.maxBodyBytes', action: 'send less, or raise the limit' },
  'unsupported-media-type': { status: 415, meaning: 'a content type the route does not take', action: 'send application/json (or octet-stream for binary tensors)' },
  'headers-too-large': { status: 431, meaning: 'the request headers are too large', action: 'send fewer or shorter headers' },
  // calibd's own failures: the request was fine.
  internal: { status: 500, meaning: 'an unexpected failure (logged in full, not described)', action: 'read the daemon log' },
  model: { status: 500, meaning: 'a model file cannot be read, parsed or handled', action: 'check the model file named' },
  state: { status: 500, meaning: 'the state folder (calibd.db, model files) cannot be read or written; nothing changed', action: 'free disk space or fix the disk, then retry' },
  worker: { status: 500, meaning: 'the calibration worker failed or crashed', action: 'retry; read the daemon log if it repeats' },
  credential: { status: 500, meaning: 'a credential file cannot be read', action: 'check the file named' },
  health: { status: 500, meaning: 'a health probe failed', action: 'none needed: health fields are reported as null' },
  notify: { status: 500, meaning: 'a systemd notification could not be sent', action: 'check NOTIFY_SOCKET' },
  mqtt: { status: 502, meaning: 'the MQTT broker cannot be reached', action: 'check mqtt.url and the broker' },
  'not-ready': { status: 503, meaning: 'no model is loaded yet', action: 'wait for start-up to finish' },
  unavailable: { status: 503, meaning: 'the inference engine is closed', action: 'retry after the restart' },
  closed: { status: 503, meaning: 'calibd is shutting down', action: 'retry after the restart' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

/** The HTTP status a failure with `code` is answered with. */
export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].status;
}

/**
 * A refusal: a typed error whose code is the caller's to fix (a 4xx code, such as
 * no-samples before any traffic). It is an answer, not a failure of calibd, and is counted
 * apart from errors.
 */
export function isRefusal(err: unknown): boolean {
  return err instanceof CalibdError && httpStatusOf(err.code) < 500;
}

export class CalibdError extends Error {
  /** Machine-readable kind, stable across releases (used in API and MQTT error payloads). */
  readonly code: ErrorCode;
  /** What the user can do about it. */
  readonly hint: string;
  /** The value that caused the error (a path, a key, a shape …). */
  readonly value: unknown;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
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

// Errors the HTTP layer raises itself, and the catalogue of codes it answers with. Every
// error body is {"error": "...", "code": "..."}: clients match on the code, which stays
// stable across releases, while the one-line message may be reworded.
import { CalibdError, OptionError } from '../common/index.js';

/**
 * Each code the HTTP layer raises, with its status. Errors from other modules keep their
 * own codes (the engine's 'request' and 'unavailable', the agent's 'option' …), so a client
 * sees the same code over HTTP and MQTT.
 */
export const HTTP_ERROR_STATUS = {
  /** The body (or the binary extension's JSON header) is not JSON. */
  'invalid-json': 400,
  /** JSON nested deeper than the reader follows. */
  'too-deep': 400,
  /** More JSON values outside tensor data than a request needs. */
  'too-many-values': 400,
  /** JSON that is not a KServe v2 inference request (missing or mistyped fields). */
  'invalid-request': 400,
  /** Inference-Header-Content-Length missing, malformed or beyond the body. */
  'invalid-binary-header': 400,
  /** binary_data_size that disagrees with the bytes sent. */
  'binary-size': 400,
  /** Tensor data whose count or nesting differs from the declared shape. */
  'shape-mismatch': 400,
  /** NaN or ±Infinity in tensor data. */
  'non-finite': 400,
  /** A BYTES input that is not a readable JPEG/PNG/WebP image, or with no preprocessing configured. */
  'invalid-image': 400,
  /** A request the HTTP framework refused before any route saw it. */
  'bad-request': 400,
  'unauthorized': 401,
  'unknown-model': 404,
  'no-route': 404,
  'request-timeout': 408,
  'body-too-large': 413,
  'unsupported-media-type': 415,
  'headers-too-large': 431,
  'not-ready': 503,
  'internal': 500,
} as const;

export type HttpErrorCode = keyof typeof HTTP_ERROR_STATUS;

/** A failure with a catalogued code and status, raised by request decoding and routing. */
export class HttpError extends CalibdError {
  readonly status: number;

  constructor(code: HttpErrorCode, message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super(code, message, opts);
    this.status = HTTP_ERROR_STATUS[code];
  }
}

/** An admin request the agent refused (unknown version, bad method): the caller's fault, 400, with the agent's own code. */
export class AdminRequestError extends CalibdError {
  readonly status = 400;

  constructor(refusal: CalibdError) {
    super(refusal.code, refusal.message, { hint: refusal.hint, value: refusal.value, cause: refusal });
  }
}

/** Binding beyond loopback without a token would open admin routes to the network. */
export class InsecureBindError extends OptionError {
  constructor(host: string) {
    super(`refusing to listen on ${host} without an API token`, {
      value: host,
      hint: 'set http.token (admin routes then need "Authorization: Bearer <token>") or bind to 127.0.0.1',
    });
  }
}

// Errors the HTTP layer raises itself. Every error body is {"error": "...", "code": "..."}:
// clients match on the code, which stays stable across releases, while the one-line message
// may be reworded. Codes and their statuses live in common/errors.ts (ERROR_CATALOGUE).
import { CalibdError, OptionError, httpStatusOf, type ErrorCode } from '../common/index.js';

/** A failure the HTTP layer raises itself (decoding, routing, auth), with a catalogued code. */
export class HttpError extends CalibdError {
  constructor(code: ErrorCode, message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super(code, message, opts);
  }

  /** The catalogue's status for this error's code. */
  get status(): number {
    return httpStatusOf(this.code);
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

/** The configured HTTP port is taken by another process. */
export class PortInUseError extends OptionError {
  constructor(host: string, port: number, cause?: unknown) {
    super(`http.port ${port} on ${host} is already in use`, {
      value: port,
      cause,
      hint: 'stop the process using it, or set http.port (or CALIBD_HTTP_PORT) to a free port; 0 picks one',
    });
  }
}

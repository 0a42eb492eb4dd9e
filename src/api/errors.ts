// Errors the HTTP layer raises itself. Each maps to one status; the body is always
// {"error": "..."} so clients need one parser for every failure.
import { OptionError } from '../common/index.js';

/** A failure with a fixed HTTP status, raised by request decoding and routing. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
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

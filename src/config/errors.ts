// The one error the config module throws. It names the offending key path and, when the
// value came from a file, the file and line, so start-up fails with a message a person can
// act on without reading a stack trace.

import { CalibdError } from '../common/index.js';

export interface ConfigErrorOptions {
  /** Dotted key path such as `recalibration.method`; '' when the problem is the whole file. */
  key?: string;
  file?: string;
  /** 1-based line in `file`, when known. */
  line?: number;
  hint?: string;
  value?: unknown;
  cause?: unknown;
}

export class ConfigError extends CalibdError {
  readonly key: string;
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(message: string, opts: ConfigErrorOptions = {}) {
    super('config', message, { hint: opts.hint, value: opts.value, cause: opts.cause });
    this.key = opts.key ?? '';
    this.file = opts.file;
    this.line = opts.line;
  }
}

// Secrets handed over by systemd credentials (LoadCredential=): files in the private,
// read-only directory named by $CREDENTIALS_DIRECTORY, visible to this service only.
// Preferred over environment variables, which leak into child processes and /proc.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CalibdError, OptionError } from '../common/errors.js';

/** A credential exists but cannot be read: a deployment problem worth stopping for. */
export class CredentialError extends CalibdError {
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('credential', message, opts);
  }
}

/**
 * The credential's text, or null when the service has no credentials directory, the
 * credential was not provided (optional credentials are skipped by systemd), or it is empty.
 * One trailing newline is dropped, since `echo secret > file` is how operators write them.
 */
export function readCredential(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (!/^[A-Za-z0-9_.@-]+$/.test(name) || name === '.' || name === '..') {
    throw new OptionError(`invalid credential name "${name}"`, { value: name, hint: 'use the ID given in LoadCredential=' });
  }
  const dir = env.CREDENTIALS_DIRECTORY;
  if (dir === undefined || dir === '') return null;
  const path = join(dir, name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CredentialError(`cannot read credential ${name}`, { value: path, cause: err, hint: 'check the LoadCredential= source file and its permissions' });
  }
  const value = text.replace(/\r?\n$/, '');
  return value === '' ? null : value;
}

import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCredential, CredentialError } from '../../src/service/index.js';
import { OptionError } from '../../src/common/index.js';

describe('readCredential', () => {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-creds-'));
  writeFileSync(join(dir, 'mqtt-password'), 's3cret\n');
  writeFileSync(join(dir, 'empty'), '');
  mkdirSync(join(dir, 'a-directory'));
  const env = { CREDENTIALS_DIRECTORY: dir };

  it('reads a credential and drops the trailing newline', () => {
    expect(readCredential('mqtt-password', env)).toBe('s3cret');
  });

  it('is null outside systemd, for a credential systemd skipped, and for an empty one', () => {
    expect(readCredential('mqtt-password', {})).toBeNull();
    expect(readCredential('missing', env)).toBeNull();
    expect(readCredential('empty', env)).toBeNull();
  });

  it('rejects names that could escape the directory, and reports unreadable ones', () => {
    expect(() => readCredential('../etc/passwd', env)).toThrow(OptionError);
    expect(() => readCredential('..', env)).toThrow(OptionError);
    expect(() => readCredential('a-directory', env)).toThrow(CredentialError);
  });
});

// The error catalogue: every code has a status and a meaning, statuses say whose fault a
// code is, typed errors take theirs from it, and the README's table lists exactly these codes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CalibdError, ERROR_CATALOGUE, OptionError, StateError, httpStatusOf, isErrorCode } from '../../src/common/index.js';
import { WorkerError } from '../../src/agent/index.js';
import { repoRoot } from '../helpers/paths.js';

describe('error catalogue', () => {
  it('gives every code a status, a meaning and what to do', () => {
    for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
      expect(code).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(e.status, code).toBeGreaterThanOrEqual(400);
      expect(e.status, code).toBeLessThan(600);
      expect(e.meaning.length, code).toBeGreaterThan(10);
      expect(e.action.length, code).toBeGreaterThan(3);
    }
  });

  it('answers the caller\'s mistakes with 4xx and calibd\'s own failures with 5xx', () => {
    expect(httpStatusOf(new OptionError('bad').code)).toBe(400);
    expect(httpStatusOf(new StateError('disk full').code)).toBe(500);
    expect(httpStatusOf(new WorkerError('calibration worker crashed').code)).toBe(500);
    expect(httpStatusOf(new CalibdError('closed', 'shutting down').code)).toBe(503);
  });

  it('keeps a typed code across the worker boundary, and anything else is "worker"', () => {
    expect(new WorkerError('no samples', 'no-samples').code).toBe('no-samples');
    expect(new WorkerError('out of memory', 'ENOMEM').code).toBe('worker');
    expect(isErrorCode('ENOMEM')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
  });

  it('is the table the README documents, row for row', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('## Fleet over MQTT'));
    const rows = [...section.matchAll(/^\| `([a-z0-9-]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(rows).toEqual(Object.entries(ERROR_CATALOGUE).map(([code, e]) => [code, e.status]));
  });
});

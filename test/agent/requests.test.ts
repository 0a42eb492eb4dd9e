// The admin request arguments shared by HTTP and MQTT: what each command takes, and the
// one error (code 'option', naming the field or value) for anything else.
import { describe, expect, it } from 'vitest';
import { recalibrateRequest, rollbackRequest } from '../../src/agent/requests.js';
import { OptionError } from '../../src/common/index.js';
import { thrown } from '../helpers/thrown.js';

function refusal(fn: () => unknown): OptionError {
  return thrown(OptionError, fn);
}

describe('admin request arguments', () => {
  it('recalibrate takes method and full', () => {
    expect(recalibrateRequest({})).toEqual({ method: undefined, full: undefined });
    expect(recalibrateRequest({ method: 'entropy', full: true })).toEqual({ method: 'entropy', full: true });
    expect(refusal(() => recalibrateRequest({ method: 'fast' })).oneLine()).toBe("unknown calibration method 'fast': use one of minmax, percentile, entropy, mse");
    expect(refusal(() => recalibrateRequest({ full: 'yes' })).value).toBe('yes');
  });

  it('rollback takes a positive integer version', () => {
    expect(rollbackRequest({ version: 3 })).toEqual({ version: 3 });
    for (const version of [0, -1, 1.5, '2', null]) expect(refusal(() => rollbackRequest({ version })).message).toBe("'version' must be a positive integer");
  });

  it('refuses unknown fields, naming the field and what is allowed', () => {
    const err = refusal(() => recalibrateRequest({ method: 'mse', fulll: true }));
    expect(err).toMatchObject({ code: 'option', value: 'fulll' });
    expect(err.oneLine()).toBe("recalibrate: unknown field 'fulll': allowed: method, full");
    expect(refusal(() => rollbackRequest({ version: 2, transaction: 'a' })).value).toBe('transaction');
  });
});

// The method registry: one list of names, read by the config schema, the CLI and the
// collectors, and the options each method's profile records.
import { describe, expect, it } from 'vitest';
import {
  CALIBRATION_METHODS, CollectorSet, RANGE_METHODS, createCollector, isCalibrationMethod, isRangeMethod, rangeMethodOf,
} from '../../src/calibration/index.js';
import { methodProfileOptions } from '../../src/calibration/methods.js';
import { recalibrationSchema } from '../../src/config/schema.js';
import { OptionError } from '../../src/common/index.js';

describe('calibration methods', () => {
  it('are one list: data-free is the one method that measures no samples', () => {
    expect(CALIBRATION_METHODS).toEqual(['minmax', 'percentile', 'entropy', 'mse', 'datafree']);
    expect(RANGE_METHODS).toEqual(['minmax', 'percentile', 'entropy', 'mse']);
    expect(rangeMethodOf('datafree')).toBe('minmax');
    expect(rangeMethodOf('entropy')).toBe('entropy');
    expect(isCalibrationMethod('datafree') && !isRangeMethod('datafree')).toBe(true);
    expect(isCalibrationMethod('kl')).toBe(false);
  });

  it('feed the config schema and the collectors', () => {
    expect(recalibrationSchema.shape.method.unwrap().options).toEqual([...RANGE_METHODS]);
    for (const m of RANGE_METHODS) expect(createCollector(m).method).toBe(m);
    expect(() => new CollectorSet('datafree' as never)).toThrow(OptionError);
  });

  it('record their own options in a profile, defaults filled in', () => {
    expect(methodProfileOptions('minmax', { bins: 512 })).toEqual({});
    expect(methodProfileOptions('percentile', {})).toEqual({ percentile: 99.999, bins: 2048 });
    expect(methodProfileOptions('entropy', { quantLevels: 64, bins: 1024 })).toEqual({ quantLevels: 64, bins: 1024 });
    expect(methodProfileOptions('mse', {})).toEqual({ bins: 2048 });
    expect(methodProfileOptions('datafree', {})).toEqual({ bins: 2048, bnSigmas: 4, inputRange: { min: 0, max: 1 }, probes: 64 });
  });
});

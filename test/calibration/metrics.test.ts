// Task metrics on plain arrays: parsing, inference from the output, and each value.
import { describe, expect, it } from 'vitest';
import { inferMetric, MetricAccumulator, parseMetric } from '../../src/calibration/index.js';
import { OptionError } from '../../src/common/index.js';

describe('task metrics', () => {
  it('parses every kind and refuses bad spellings with a hint', () => {
    expect(parseMetric('mask-iou:0.3')).toEqual({ kind: 'mask-iou', threshold: 0.3, name: 'mask-iou:0.3' });
    expect(parseMetric('top1-steps').kind).toBe('top1-steps');
    for (const bad of ['mask-iou', 'mask-iou:1.5', 'top1:2', 'iou', 'sqnr:3:4']) expect(() => parseMetric(bad)).toThrow(OptionError);
  });

  it('infers the metric from the output shape and values', () => {
    expect(inferMetric([8, 10], new Float32Array(80)).name).toBe('top1');
    expect(inferMetric([2, 40, 97], new Float32Array(10)).name).toBe('top1-steps');
    expect(inferMetric([1, 1, 4, 4], new Float32Array(16).fill(0.5)).name).toBe('mask-iou:0.3');
    expect(inferMetric([1, 1, 4, 4], new Float32Array(16).fill(3)).name).toBe('sqnr'); // not a probability map
    expect(inferMetric([5], new Float32Array(5)).name).toBe('sqnr');
  });

  it('top1-steps compares argmax per time step', () => {
    const acc = new MetricAccumulator(parseMetric('top1-steps'));
    // 1 sample, 3 steps, 2 classes: steps 0 and 2 agree, step 1 flips.
    acc.add([1, 0, 0, 1, 0.2, 0.8], [0.9, 0.1, 0.6, 0.4, 0.1, 0.9], [1, 3, 2]);
    expect(acc.value).toBeCloseTo(2 / 3, 12);
  });

  it('mask-iou is intersection over union of the thresholded maps; two empty masks agree', () => {
    const acc = new MetricAccumulator(parseMetric('mask-iou:0.5'));
    acc.add([0.9, 0.9, 0.1, 0.6], [0.8, 0.2, 0.7, 0.9], [1, 1, 2, 2]);
    expect(acc.value).toBeCloseTo(2 / 4, 12); // ref {0,1,3}, test {0,2,3}: ∩ 2, ∪ 4
    const empty = new MetricAccumulator(parseMetric('mask-iou:0.5'));
    empty.add([0.1, 0.2], [0.3, 0.4], [1, 1, 1, 2]);
    expect(empty.value).toBe(1);
  });

  it('sqnr is 10·log10(signal / noise)', () => {
    const acc = new MetricAccumulator(parseMetric('sqnr'));
    acc.add([3, 4], [3, 3.5], [2]);
    expect(acc.value).toBeCloseTo(10 * Math.log10(25 / 0.25), 10);
  });
});

// The input contract a daemon fed images assumes before its first sample: the
// preprocessing's output range unless inputRange says otherwise.
import { describe, expect, it } from 'vitest';
import { inputContract, parseConfig } from '../../src/config/index.js';
import { preprocessRange, preprocessSpec } from '../../src/images/index.js';

describe('preprocessRange', () => {
  it('spans (0 − mean)/std to (255·scale − mean)/std over the channels', () => {
    expect(preprocessRange(preprocessSpec('mnist'))).toEqual({ min: 0, max: 1 });
    const cls = preprocessRange(preprocessSpec('paddleocr-cls'));
    expect(cls.min).toBeCloseTo(-1, 12);
    expect(cls.max).toBeCloseTo(1, 12);
    const imagenet = preprocessRange(preprocessSpec('imagenet'));
    // Smallest: the blue channel's (0 − 0.406)/0.225 is above red's (0 − 0.485)/0.229.
    expect(imagenet.min).toBeCloseTo(-0.485 / 0.229, 12);
    expect(imagenet.max).toBeCloseTo((1 - 0.406) / 0.225, 12);
  });
});

describe('inputContract, from the real config loader', () => {
  const model = 'models/mnist-cnn.onnx';

  it('is inputRange without preprocess, and the preset range when inputRange is left at its default', () => {
    expect(inputContract(parseConfig({ model }))).toEqual({ min: 0, max: 1 });
    const rec = inputContract(parseConfig({ model, preprocess: 'paddleocr-rec' }));
    expect([rec.min, rec.max].map((v) => Number(v.toFixed(12)))).toEqual([-1, 1]);
  });

  it('keeps an inputRange the config sets, preprocess or not', () => {
    expect(inputContract(parseConfig({ model, preprocess: 'imagenet', inputRange: { min: -3, max: 3 } }))).toEqual({ min: -3, max: 3 });
  });
});

// The input contract: the interval a model's inputs lie in, which data-free calibration
// and the drift monitor assume before any sample has been seen.

import { preprocessRange } from '../images/index.js';
import type { CalibdConfig } from './schema.js';

/**
 * `inputRange`, except that a daemon fed images (`preprocess` set) with `inputRange` left at
 * its default [0, 1] takes the preprocessing's output range: for the imagenet or paddleocr
 * presets [0, 1] would clip every negative value of the first INT8 calibration.
 */
export function inputContract(config: Pick<CalibdConfig, 'inputRange' | 'preprocess'>): { min: number; max: number } {
  const r = config.inputRange;
  const isDefault = r.min === 0 && r.max === 1;
  return config.preprocess && isDefault ? preprocessRange(config.preprocess) : { min: r.min, max: r.max };
}

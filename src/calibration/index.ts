// Public API of calibration: statistic collectors and range estimators (pure math on typed
// arrays). One export line per module, so later modules add a line without touching others.

export { Histogram, type HistogramJSON } from './histogram.js';
export { MinMaxObserver, MovingAverageMinMaxObserver, type MinMaxJSON } from './minmax.js';
export { minMaxRange, percentileRange, entropyRange, mseRange, type Range, type EntropyOptions, type MseOptions } from './estimators.js';
export {
  createCollector, collectorFromJSON, CollectorSet, RANGE_METHODS,
  type RangeMethod, type CollectorOptions, type TensorCollector,
} from './collector.js';

// Calibration: statistic collectors and range estimators (pure math on typed arrays),
// data-free ranges, calibrate() (samples → INT8 model) and the FP32 comparison.

export { Histogram, type HistogramJSON } from './histogram.js';
export { MinMaxObserver, type MinMaxJSON } from './minmax.js';
export { HistogramObserver, type RangeObserver } from './observer.js';
export { minMaxRange, percentileRange, entropyRange, mseRange, type Range, type EntropyOptions, type MseOptions } from './estimators.js';
export { createCollector, collectorFromJSON, CollectorSet, type CollectorOptions, type TensorCollector } from './collector.js';
export {
  CALIBRATION_METHODS, RANGE_METHODS, isCalibrationMethod, isRangeMethod, rangeMethodOf,
  type CalibrationMethod, type RangeMethod,
} from './methods.js';
export { Calibrator, calibrate, type CalibrateOptions, type CalibrationResult } from './calibrate.js';
export { batchNormRanges, probeSource, inputSampleShapes, hasDynamicInput, perSampleShapes, type DataFreeOptions } from './datafree.js';
export { arraySource, sliceSource, toFeeds, dropNonFinite, type Batch, type FloatBatch, type SampleSource } from './samples.js';
export { compareModels, type Comparison, type ComparisonOptions, type OutputComparison } from './evaluate.js';
export {
  selectInt8Nodes, buildVariant, hardwareKey,
  type SelectionOptions, type SelectionResult, type SelectionInput, type AccuracyBudget, type NodeReport, type SelectionStep,
} from './selection.js';
export {
  greedySelection, gainUs, sensitivityGainDb, slowerInInt8, isolatedNodes,
  type SelectionEvidence, type SelectionLimits, type VariantMeasure, type Timing, type PolicyOutcome,
} from './selection-policy.js';
export { analyseLayers, type LayerReport, type LayerAnalysisOptions } from './layers.js';
export {
  parseMetric, inferMetric, formatMetric, formatDb, MetricAccumulator, OutputScore, SqnrAccumulator, argmaxRows, METRIC_KINDS, METRIC_BOUNDS,
  type TaskMetric, type MetricKind, type MetricBounds, type Figures,
} from './metrics.js';
export { ChannelMeanObserver } from './channel-means.js';
export { prepareModel } from './prepare.js';
export { empiricalBiasDeltas, type EmpiricalBiasOptions } from './bias-correction.js';
export {
  statisticsBundle, parseStatistics, collectorsOf, mergeStatistics, mergeRefusal, fleetCalibration, fleetProfile, StatisticsMerger, parseFleetCalibration, STATISTICS_FORMAT, FLEET_CALIBRATION_FORMAT,
  type StatisticsBundle, type FleetCalibration,
} from './shared-statistics.js';

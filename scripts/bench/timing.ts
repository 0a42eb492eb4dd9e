// The benchmarks' side-by-side timing lives with the runtime, where the selection uses it too.
export { interleaved, percentile, type Variant, type TimingResult } from '../../src/runtime/timing.js';

// The API's own Prometheus metrics. The engine's live figures (in flight, active version)
// are read at scrape time, so the scrape shows the truth rather than the last update.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InferenceEngine } from '../runtime/index.js';

export interface ApiMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  /** Failed requests by error code; codes come from a fixed catalogue, so the label set stays small. */
  errors: Counter<'code'>;
  inferenceSeconds: Histogram;
}

export function createApiMetrics(engine: InferenceEngine): ApiMetrics {
  const registry = new Registry();
  const requests = new Counter({
    name: 'calibd_http_requests_total',
    help: 'HTTP requests by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'calibd_http_errors_total',
    help: 'Requests answered with an error, by error code (e.g. non-finite: NaN or infinite input values; request-timeout: bodies too slow to arrive)',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const inferenceSeconds = new Histogram({
    name: 'calibd_inference_duration_seconds',
    help: 'Time ONNX Runtime took per inference request',
    // Small models run in well under a millisecond; larger ones in tens of milliseconds.
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    registers: [registry],
  });
  new Gauge({
    name: 'calibd_inferences_in_flight',
    help: 'Inference requests running now, across the active and draining sessions',
    registers: [registry],
    collect() {
      this.set(engine.stats().inFlight);
    },
  });
  new Gauge({
    name: 'calibd_calibration_version',
    help: 'Calibration version of the model being served (-1 when none)',
    registers: [registry],
    collect() {
      this.set(engine.activeVersion ?? -1);
    },
  });
  return { registry, requests, errors, inferenceSeconds };
}

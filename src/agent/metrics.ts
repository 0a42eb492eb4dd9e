// Prometheus gauges for the daemon's own state, read from the agent at scrape time.
import { Gauge, Registry } from 'prom-client';
import type { CalibrationAgent } from './agent.js';

export function agentMetrics(agent: CalibrationAgent): Registry {
  const registry = new Registry();
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  gauge('calibd_drift_score', 'PSI between the active calibration\'s inputs and recent inputs', () => agent.drift.score());
  gauge('calibd_buffer_rows', 'Samples in the rolling buffer', () => agent.buffer.count());
  gauge('calibd_sampled_total', 'Inputs sampled into the buffer since start', () => agent.counters.sampled);
  gauge('calibd_samples_dropped_total', 'Sampled inputs dropped because the worker was busy', () => agent.counters.dropped);
  gauge('calibd_recalibrations_total', 'Recalibrations run since start', () => agent.counters.recalibrations);
  gauge('calibd_calibrations_accepted_total', 'Candidates the gate accepted since start', () => agent.counters.accepted);
  gauge('calibd_calibrations_rejected_total', 'Candidates the gate rejected since start', () => agent.counters.rejected);
  gauge('calibd_calibrations_unchanged_total', 'Candidates identical to the active calibration (no new version) since start', () => agent.counters.unchanged);
  return registry;
}

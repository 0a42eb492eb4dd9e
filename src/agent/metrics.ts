// Prometheus metrics for the daemon's own state, read from the agent at scrape time: gauges
// for levels (drift, buffer rows), counters for the totals the agent counts since start.
import { Counter, Gauge, Registry } from 'prom-client';
import type { AgentCounters, CalibrationAgent } from './agent.js';

export function agentMetrics(agent: CalibrationAgent): Registry {
  const registry = new Registry();
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  // The agent's counts only grow; each scrape adds what was counted since the last one, so
  // these are true counters (Prometheus's rate() needs them for *_total).
  const counter = (name: string, help: string, key: keyof AgentCounters) => {
    let seen = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = agent.counts()[key];
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  };
  gauge('calibd_drift_score', 'PSI between the active calibration\'s inputs and recent inputs', () => agent.drift.score());
  gauge('calibd_buffer_rows', 'Samples in the rolling buffer', () => agent.buffer.count());
  counter('calibd_sampled_total', 'Inputs sampled into the buffer since start', 'sampled');
  counter('calibd_samples_dropped_total', 'Sampled inputs dropped because the worker was busy', 'dropped');
  counter('calibd_recalibrations_total', 'Recalibrations run since start', 'recalibrations');
  counter('calibd_calibrations_accepted_total', 'Candidates the gate accepted since start', 'accepted');
  counter('calibd_calibrations_rejected_total', 'Candidates the gate rejected since start', 'rejected');
  counter('calibd_calibrations_unchanged_total', 'Candidates identical to the active calibration (no new version) since start', 'unchanged');
  counter('calibd_calibrations_refused_total', 'Recalibrations refused as the caller\'s to fix (e.g. no samples yet) since start', 'refused');
  return registry;
}

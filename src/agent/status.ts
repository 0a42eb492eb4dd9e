// What GET /v2/calibd/status and /calibrations (and the MQTT status command) answer: plain
// reports built from the agent's parts, no logic of their own.

import { calibdVersion } from '../common/index.js';
import type { CalibdConfig } from '../config/index.js';
import type { EngineStats } from '../runtime/index.js';
import type { BufferStats, ProfileRecord } from '../state/index.js';
import { round, type AgentCounters } from './pipeline.js';

export interface StatusParts {
  config: CalibdConfig;
  fp32Sha256: string;
  startedAt: number;
  active: ProfileRecord | null;
  running: boolean;
  liveMethod: string;
  counters: AgentCounters;
  buffer: BufferStats;
  driftScore: number;
  engine: EngineStats;
}

export function statusReport(p: StatusParts): Record<string, unknown> {
  const { config, active, buffer: b } = p;
  return {
    calibdVersion: calibdVersion(),
    deviceId: config.deviceId,
    uptimeSec: Math.round((Date.now() - p.startedAt) / 1000),
    model: { name: config.modelName, path: config.model, sha256: p.fp32Sha256 },
    serving: active ? 'int8' : 'fp32',
    calibration: {
      version: active?.version ?? 0,
      method: active?.method ?? 'fp32',
      createdAt: active ? new Date(active.createdAt).toISOString() : null,
      figures: active?.figures ?? {},
      // Set when the active calibration came from the fleet's merged statistics.
      ...(fleetOf(active) ? { fleet: fleetOf(active) } : {}),
      running: p.running,
      liveMethod: p.liveMethod,
    },
    counters: { ...p.counters },
    buffer: { rows: b.rows, bytes: b.bytes, perClass: b.perClass, evicted: b.evicted, rejectedNonFinite: b.rejectedNonFinite },
    drift: { score: round(p.driftScore, 4), threshold: config.recalibration.driftThreshold },
    engine: p.engine,
  };
}

function fleetOf(r: ProfileRecord | null): unknown {
  return (r?.profile as { fleet?: unknown } | undefined)?.fleet;
}

/** The newest 100 versions, newest first. */
export function calibrationList(profiles: ProfileRecord[]): unknown[] {
  return profiles.map((p) => ({
    version: p.version,
    parent: p.parent,
    state: p.state,
    method: p.method,
    sampleCount: p.sampleCount,
    createdAt: new Date(p.createdAt).toISOString(),
    figures: p.figures,
    ...(fleetOf(p) ? { fleet: fleetOf(p) } : {}),
    // False once retention pruned its file (or for rejected ones): not a rollback target.
    hasModel: p.modelPath !== null,
  }));
}

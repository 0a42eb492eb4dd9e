// The agent's event sink on a real state database: persisted events land in the event log,
// transient ones only reach listeners, and the README lists every event type there is.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentEvents, agentEventTypes, type AgentEvent } from '../../src/agent/events.js';
import { EventLog, openStateDb } from '../../src/state/index.js';
import { repoRoot } from '../helpers/paths.js';

describe('agent events', () => {
  it('persists, logs and hands on each event; transient ones skip the event log', () => {
    const state = openStateDb(mkdtempSync(join(tmpdir(), 'calibd-events-')));
    const log = new EventLog(state);
    const said: string[] = [];
    const logger = { info: (_o: object, m?: string) => said.push(`info ${m}`), warn: (_o: object, m?: string) => said.push(`warn ${m}`), error() {} };
    const sink = new AgentEvents(log, logger);
    const heard: AgentEvent[] = [];
    sink.emit('first-boot', { serving: 'fp32' }); // before anyone listens: log only
    sink.listen((e) => heard.push(e));
    sink.emit('calibration.failed', { code: 'ENOSPC' });
    sink.emit('statistics.restored', { restoredSamples: 3 }, false);
    expect(heard.map((e) => e.type)).toEqual(['calibration.failed', 'statistics.restored']);
    expect(log.list({}).map((e) => e.type).sort()).toEqual(['calibration.failed', 'first-boot']);
    expect(said).toEqual(['info first-boot', 'warn calibration.failed', 'info statistics.restored']);
    state.close();
  });

  it('are the types the README documents', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const line = readme.slice(readme.indexOf('Types: `started`'), readme.indexOf('Calibration\nevents carry'));
    expect([...line.matchAll(/`([a-z.-]+)`/g)].map((m) => m[1])).toEqual([...agentEventTypes]);
  });
});

// The agent's typed events: each is appended to the event log (unless transient), logged,
// and handed to listeners (the fleet member publishes them). Every part of the agent reports
// through one EventSink, so what happened is said the same way wherever it happened.

import type { Logger } from '../common/index.js';
import type { EventLog } from '../state/index.js';


/** Every event the agent says; README.md ("events") documents them for fleet subscribers. */
export const agentEventTypes = [
  'started',
  'first-boot',
  'statistics.restored',
  'selection',
  'calibration.started',
  'calibration.accepted',
  'calibration.rejected',
  'calibration.unchanged',
  'calibration.failed',
  'rollback',
  'rollback.failed',
  'versions.pruned',
  'config.changed',
  'state.rebuilt',
  'error',
] as const;
export type AgentEventType = (typeof agentEventTypes)[number];

export interface AgentEvent {
  type: AgentEventType;
  time: number;
  data: Record<string, unknown>;
}

/** Where the parts of the agent say what happened. */
export interface EventSink {
  emit(type: AgentEventType, data: Record<string, unknown>, persist?: boolean): void;
}

export class AgentEvents implements EventSink {
  /** Events said during start-up, before the agent exists, only reach the log. */
  private listener: ((e: AgentEvent) => void) | null = null;

  constructor(
    private readonly log: EventLog,
    private readonly logger: Logger,
  ) {}

  /** Hands every event from now on to `listener` (the agent re-emits them to its subscribers). */
  listen(listener: (e: AgentEvent) => void): void {
    this.listener = listener;
  }

  emit(type: AgentEventType, data: Record<string, unknown>, persist = true): void {
    const event: AgentEvent = { type, time: Date.now(), data };
    if (persist) {
      try {
        this.log.append(type, data);
      } catch (err) {
        this.logger.warn({ err }, 'event log write failed');
      }
    }
    (type === 'error' || type.endsWith('.failed') ? this.logger.warn : this.logger.info).call(this.logger, { event: type, ...data }, type);
    this.listener?.(event);
  }
}

// recalibration.cron: a node-cron task that triggers a recalibration, replaced when the
// expression changes at runtime (config/set) and stopped on close.

import { schedule, type ScheduledTask } from 'node-cron';

export class RecalibrationCron {
  private task: ScheduledTask | null = null;

  constructor(private readonly onTick: () => void) {}

  /** Runs onTick on `expression` from now on; null turns it off. */
  set(expression: string | null): void {
    this.task?.stop();
    this.task = expression ? schedule(expression, this.onTick) : null;
  }

  stop(): void {
    this.task?.stop();
    this.task = null;
  }
}

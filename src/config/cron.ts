// Checks cron expressions at config time with node-cron's own validator, the library the
// agent schedules with, so a config that loads always schedules (node-cron's grammar: 5
// fields, or 6 with leading seconds; lists, ranges, steps, month and weekday names; a
// range may wrap, e.g. 5-1 in the minute field).

import { validateDetailed } from 'node-cron';

/** Why `expr` is not a valid cron expression, or null when it is. */
export function cronProblem(expr: string): string | null {
  const result = validateDetailed(expr);
  if (result.valid) return null;
  return result.errors.map((e) => e.message).join('; ');
}

export function isValidCron(expr: string): boolean {
  return cronProblem(expr) === null;
}

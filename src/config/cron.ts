// Checks cron expressions at config time. node-cron (whose `validate` the scheduler's syntax
// follows) is not a dependency yet, so this is a small stand-in with the same grammar:
// 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds; each field
// a comma list of `*`, `n`, `a-b`, with an optional `/step`; month and weekday names
// (jan, january, sun, sunday …). When the scheduler brings in a cron library, use its
// validator here instead so the two can never disagree.

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const SECOND: FieldSpec = { name: 'second', min: 0, max: 59 };
const FIVE_FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  // 7 is Sunday as well, as in node-cron and Vixie cron.
  { name: 'day of week', min: 0, max: 7, names: WEEKDAYS },
];

const ITEM = /^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:\/(\d+))?$/i;

/** Why `expr` is not a valid cron expression, or null when it is. */
export function cronProblem(expr: string): string | null {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `has ${fields.length} field(s); expected 5 (minute hour day month weekday) or 6 (with leading seconds)`;
  }
  const specs = fields.length === 6 ? [SECOND, ...FIVE_FIELDS] : FIVE_FIELDS;
  for (let i = 0; i < fields.length; i++) {
    const problem = fieldProblem(fields[i], specs[i]);
    if (problem) return `${specs[i].name} field "${fields[i]}" ${problem}`;
  }
  return null;
}

export function isValidCron(expr: string): boolean {
  return cronProblem(expr) === null;
}

function fieldProblem(field: string, spec: FieldSpec): string | null {
  for (const item of field.split(',')) {
    const m = ITEM.exec(item);
    if (!m) return `has an unreadable part "${item}"`;
    const [, star, from, to, step] = m;
    if (step !== undefined && Number(step) < 1) return 'has a step below 1';
    if (star) continue;
    const a = fieldValue(from, spec);
    if (a === null) return `has "${from}" outside ${spec.min}-${spec.max}`;
    if (to !== undefined) {
      const b = fieldValue(to, spec);
      if (b === null) return `has "${to}" outside ${spec.min}-${spec.max}`;
      if (b < a) return `has a backwards range "${from}-${to}"`;
    }
  }
  return null;
}

function fieldValue(token: string, spec: FieldSpec): number | null {
  if (/^\d+$/.test(token)) {
    const n = Number(token);
    return n >= spec.min && n <= spec.max ? n : null;
  }
  if (!spec.names) return null;
  const t = token.toLowerCase();
  const idx = spec.names.findIndex((full) => full === t || full.slice(0, 3) === t);
  if (idx < 0) return null;
  return spec.names === MONTHS ? idx + 1 : idx;
}

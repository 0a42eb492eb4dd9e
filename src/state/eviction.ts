// Coverage-aware eviction planning, as pure arithmetic over per-(class, hour) counts.
//
// While the buffer is over a bound, one row goes from the class holding the most rows;
// within that class, from the hour bucket holding the most rows (the older bucket on a
// tie); within that bucket, its oldest row. So a rare class loses rows only once it is as
// large as every other, and a class's rows stay spread over the hours it was seen in,
// while the newest rows of each bucket survive. Choosing the class first matters: picking
// the largest (class, hour) cell alone would strip a rare class whose few rows happen to
// share one hour before a common class spread thinly over many hours.

export interface GroupCount {
  /** Predicted class, or -1 for samples without one. */
  cls: number;
  bucket: number;
  rows: number;
  bytes: number;
}

export interface EvictionStep {
  cls: number;
  bucket: number;
  /** How many of the group's oldest rows to delete. */
  count: number;
}

interface Bucket {
  bucket: number;
  rows: number;
  bytes: number;
  take: number;
}

interface ClassTally {
  cls: number;
  rows: number;
  bytes: number;
  buckets: Bucket[];
}

/**
 * Which rows to delete to get within `maxRows` and `maxBytes`. Byte sizes are estimated
 * from each group's mean row size, so the caller re-plans after deleting until no step is
 * left.
 */
export function planEviction(groups: readonly GroupCount[], maxRows: number, maxBytes: number): EvictionStep[] {
  let rows = 0;
  let bytes = 0;
  const classes = new Map<number, ClassTally>();
  for (const g of groups) {
    if (g.rows <= 0) continue;
    rows += g.rows;
    bytes += g.bytes;
    let c = classes.get(g.cls);
    if (!c) classes.set(g.cls, (c = { cls: g.cls, rows: 0, bytes: 0, buckets: [] }));
    c.rows += g.rows;
    c.bytes += g.bytes;
    c.buckets.push({ bucket: g.bucket, rows: g.rows, bytes: g.bytes, take: 0 });
  }
  if (rows <= maxRows && bytes <= maxBytes) return [];

  const tallies = [...classes.values()];
  while (rows > 0 && (rows > maxRows || bytes > maxBytes)) {
    let c = tallies[0];
    for (const t of tallies) {
      if (t.rows > c.rows || (t.rows === c.rows && (t.bytes > c.bytes || (t.bytes === c.bytes && t.cls < c.cls)))) c = t;
    }
    let b = c.buckets[0];
    for (const x of c.buckets) {
      if (x.rows > b.rows || (x.rows === b.rows && x.bucket < b.bucket)) b = x;
    }
    const rowBytes = b.bytes / b.rows;
    b.rows -= 1;
    b.bytes -= rowBytes;
    b.take += 1;
    c.rows -= 1;
    c.bytes -= rowBytes;
    rows -= 1;
    bytes -= rowBytes;
  }

  const steps: EvictionStep[] = [];
  for (const c of tallies) {
    for (const b of c.buckets) if (b.take > 0) steps.push({ cls: c.cls, bucket: b.bucket, count: b.take });
  }
  return steps;
}

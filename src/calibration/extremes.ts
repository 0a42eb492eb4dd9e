// The finite extremes of a batch of values: the first pass of every range statistic.

/** min, max and count of the finite values of `data` (lo > hi when there are none). */
export function finiteExtremes(data: ArrayLike<number>): { lo: number; hi: number; finite: number } {
  return (data instanceof Float32Array ? float32Extremes(data) : null) ?? checkedExtremes(data);
}

/**
 * min, max and the finite count of float32 data in one branch-light pass: a running sum is
 * finite exactly when no value is NaN or infinite (or the sum overflowed), so the common
 * all-finite case needs no per-value test. null when the sum says to look closer.
 */
function float32Extremes(data: Float32Array): { lo: number; hi: number; finite: number } | null {
  const n = data.length;
  let lo0 = Infinity, lo1 = Infinity, hi0 = -Infinity, hi1 = -Infinity, sum0 = 0, sum1 = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const x = data[i];
    const y = data[i + 1];
    lo0 = Math.min(lo0, x);
    hi0 = Math.max(hi0, x);
    lo1 = Math.min(lo1, y);
    hi1 = Math.max(hi1, y);
    sum0 += x;
    sum1 += y;
  }
  if (i < n) {
    const x = data[i];
    lo0 = Math.min(lo0, x);
    hi0 = Math.max(hi0, x);
    sum0 += x;
  }
  if (!Number.isFinite(sum0 + sum1)) return null;
  return { lo: Math.min(lo0, lo1), hi: Math.max(hi0, hi1), finite: n };
}

/** min, max and finite count of any numbers, skipping NaN and ±Infinity. */
function checkedExtremes(data: ArrayLike<number>): { lo: number; hi: number; finite: number } {
  let lo = Infinity;
  let hi = -Infinity;
  let finite = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x !== 0) continue; // NaN and ±Infinity
    finite++;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return { lo, hi, finite };
}

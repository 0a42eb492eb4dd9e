// Shared settings of the fuzz harness: a fixed seed and a short run inside `npm test`;
// `npm run fuzz` sets CALIBD_FUZZ_RUNS for a long one. A failure prints fast-check's seed
// and path, which reproduce it exactly; each one found becomes a regression test.

export const FUZZ_SEED = Number(process.env.CALIBD_FUZZ_SEED ?? 20261202);

/** Runs per property: `short` in npm test, CALIBD_FUZZ_RUNS when set. */
export function fuzzRuns(short: number): number {
  const long = Number(process.env.CALIBD_FUZZ_RUNS);
  return Number.isInteger(long) && long > 0 ? long : short;
}

/** A long run may take minutes per property. */
export const FUZZ_TIMEOUT_MS = process.env.CALIBD_FUZZ_RUNS ? 3_600_000 : 60_000;

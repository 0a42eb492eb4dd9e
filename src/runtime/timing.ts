// Side-by-side timing: variants run in interleaved blocks in one process, each block's
// first runs dropped, so ORT's spinning thread pools and CPU frequency drift hit every
// variant alike (see docs/ARCHITECTURE.md, field notes). Reports medians and ratios, never absolutes
// alone. Used by the benchmarks and by the INT8-or-FP32 selection.

export interface Variant {
  name: string;
  run: () => Promise<unknown>;
}

export interface TimingResult {
  name: string;
  runs: number;
  medianMs: number;
  p90Ms: number;
  p99Ms: number;
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export async function interleaved(variants: Variant[], opts: { blocks?: number; perBlock?: number; dropPerBlock?: number } = {}): Promise<TimingResult[]> {
  const blocks = opts.blocks ?? 10;
  const perBlock = opts.perBlock ?? 12;
  const drop = opts.dropPerBlock ?? 2;
  const times = variants.map(() => [] as number[]);
  for (const v of variants) for (let i = 0; i < 3; i++) await v.run(); // warm-up
  for (let b = 0; b < blocks; b++) {
    // Alternate the order so neither variant always follows the other.
    const order = b % 2 === 0 ? variants.map((_, i) => i) : variants.map((_, i) => variants.length - 1 - i);
    for (const i of order) {
      for (let k = 0; k < perBlock; k++) {
        const t0 = process.hrtime.bigint();
        await variants[i].run();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (k >= drop) times[i].push(ms);
      }
    }
  }
  return variants.map((v, i) => {
    const s = [...times[i]].sort((a, b) => a - b);
    return { name: v.name, runs: s.length, medianMs: percentile(s, 0.5), p90Ms: percentile(s, 0.9), p99Ms: percentile(s, 0.99) };
  });
}

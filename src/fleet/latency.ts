// Inference latency for the metrics topic. The engine reports each request's latency; a
// recorder keeps the values of the current metrics interval in a fixed-size reservoir
// (O(1) per request, bounded memory) and summarises them when the interval is published.

export interface LatencySummary {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  /** How many values the percentiles are computed from (≤ the reservoir size). */
  samples: number;
}

export class LatencyRecorder {
  private readonly values: Float64Array;
  private seen = 0;
  private max = 0;

  constructor(
    readonly capacity = 4096,
    private readonly random: () => number = Math.random,
  ) {
    this.values = new Float64Array(capacity);
  }

  record(ms: number): void {
    if (!Number.isFinite(ms)) return;
    if (ms > this.max) this.max = ms;
    if (this.seen < this.capacity) this.values[this.seen] = ms;
    else {
      // Reservoir sampling keeps a uniform sample of the whole interval.
      const j = Math.floor(this.random() * (this.seen + 1));
      if (j < this.capacity) this.values[j] = ms;
    }
    this.seen++;
  }

  /** Summary of the values since the last call, then starts a new interval. */
  take(): LatencySummary {
    const n = Math.min(this.seen, this.capacity);
    const sorted = this.values.slice(0, n).sort();
    const q = (p: number) => (n === 0 ? null : round3(sorted[Math.min(n - 1, Math.ceil(p * n) - 1)]));
    const out: LatencySummary = { count: this.seen, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: n === 0 ? null : round3(this.max), samples: n };
    this.seen = 0;
    this.max = 0;
    return out;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

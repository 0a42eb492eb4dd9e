// Reconnect delays: exponential with "equal jitter" (half the step fixed, half random), so a
// fleet that lost its broker at the same moment does not come back at the same moment, and
// no device waits longer than `maxMs` once the broker is back.

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
  /** Injected in tests; defaults to Math.random. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  readonly initialMs: number;
  readonly maxMs: number;
  private readonly factor: number;
  private readonly random: () => number;

  constructor(o: BackoffOptions = {}) {
    this.initialMs = o.initialMs ?? 500;
    this.maxMs = o.maxMs ?? 30_000;
    this.factor = o.factor ?? 2;
    this.random = o.random ?? Math.random;
    if (!(this.initialMs > 0) || !(this.maxMs >= this.initialMs) || !(this.factor >= 1)) {
      throw new RangeError(`backoff needs 0 < initialMs <= maxMs and factor >= 1 (got ${this.initialMs}, ${this.maxMs}, ${this.factor})`);
    }
  }

  /** The delay before the next attempt; each call counts one attempt. */
  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * this.factor ** Math.min(this.attempt, 52));
    this.attempt++;
    return Math.round(cap / 2 + this.random() * (cap / 2));
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

// Telemetry held while the broker is unreachable: at most `max` messages, oldest dropped
// first (fresh metrics matter more than old ones), every drop counted. Replaces mqtt.js's
// offline queue, which is unbounded.

export interface QueuedMessage {
  topic: string;
  payload: string;
  qos: 0 | 1;
  retain: boolean;
  properties?: Record<string, unknown>;
}

export class BoundedQueue<T = QueuedMessage> {
  private items: T[] = [];
  dropped = 0;
  highWater = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`queue bound must be a non-negative integer, got ${max}`);
  }

  /** Returns false when the item (or an older one) had to be dropped. */
  push(item: T): boolean {
    if (this.max === 0) {
      this.dropped++;
      return false;
    }
    let ok = true;
    if (this.items.length >= this.max) {
      this.items.shift();
      this.dropped++;
      ok = false;
    }
    this.items.push(item);
    if (this.items.length > this.highWater) this.highWater = this.items.length;
    return ok;
  }

  /** Takes everything out, oldest first. */
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  get length(): number {
    return this.items.length;
  }
}

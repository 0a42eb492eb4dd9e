// The rolling buffer of sampled live inputs that calibration and validation draw from.
// add() only queues in memory so the inference path never waits on the disk; a short timer
// (or a full batch) writes the queue in one transaction, which also enforces the bounds.
// Reads page through the table by key instead of holding a cursor open, because an open
// better-sqlite3 iterator blocks every other statement on the connection, and a consumer
// awaiting inference between samples would make the next timed flush fail.

import type Database from 'better-sqlite3';
import { DataError } from '../common/index.js';
import { allFinite, decodeInputs, encodeInputs, validateInputs, type SampleInputs } from './codec.js';
import type { StateDb } from './db.js';
import { planEviction, type GroupCount } from './eviction.js';

const HOUR_MS = 3_600_000;

export interface SampleBufferOptions {
  maxRows?: number;
  maxBytes?: number;
  /** Rows older than this are dropped at every flush; Infinity keeps them. */
  maxAgeMs?: number;
  flushMs?: number;
  batchSize?: number;
  /** Clock for age eviction; tests move it. */
  now?: () => number;
  /** Told when a background flush fails and its batch is dropped (a full disk, an I/O error). */
  onFlushError?: (err: unknown, dropped: number) => void;
}

export interface NewSample {
  inputs: SampleInputs;
  /** The FP32 model's predicted class, when known. */
  predicted?: number | null;
  /** Milliseconds since the epoch; defaults to now. */
  time?: number;
}

export interface StoredSample {
  id: number;
  time: number;
  /** Hours since the epoch. */
  bucket: number;
  predicted: number | null;
  inputs: SampleInputs;
}

export interface IterateOptions {
  limit?: number;
  newestFirst?: boolean;
  /** Rows read per query; bounds memory. */
  pageSize?: number;
}

export interface BufferStats {
  rows: number;
  bytes: number;
  /** Creation time of the oldest and newest stored row, or null when empty. */
  oldest: number | null;
  newest: number | null;
  /** Rows per predicted class; 'unknown' for samples without a prediction. */
  perClass: Record<string, number>;
  /** Distinct hour buckets stored. */
  hours: number;
  /** Since this buffer was opened: */
  rejectedNonFinite: number;
  evicted: number;
  flushes: number;
  /** Samples lost because a write failed (disk full, I/O error). */
  dropped: number;
  /** Queued, not yet written. */
  pending: number;
}

interface Pending {
  time: number;
  bucket: number;
  predicted: number | null;
  header: string;
  data: Buffer;
  bytes: number;
}

interface Row {
  id: number;
  created_ms: number;
  bucket: number;
  predicted: number | null;
  header: string;
  data: Buffer;
}

const COLUMNS = 'id, created_ms, bucket, predicted, header, data';

export class SampleBuffer {
  readonly maxRows: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly flushMs: number;
  readonly batchSize: number;

  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly onFlushError: ((err: unknown, dropped: number) => void) | undefined;
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private counters = { rejectedNonFinite: 0, evicted: 0, flushes: 0, dropped: 0 };

  private readonly stmt: {
    insert: Database.Statement;
    deleteOlder: Database.Statement;
    deleteOldestInGroup: Database.Statement;
    groups: Database.Statement<[], GroupCount>;
    totals: Database.Statement<[], { rows: number; bytes: number; hours: number }>;
    oldest: Database.Statement<[], { t: number | null }>;
    newest: Database.Statement<[], { t: number | null }>;
    perClass: Database.Statement<[], { cls: number; rows: number }>;
    firstAsc: Database.Statement<[number], Row>;
    nextAsc: Database.Statement<[number, number, number], Row>;
    firstDesc: Database.Statement<[number], Row>;
    nextDesc: Database.Statement<[number, number, number], Row>;
  };

  constructor(private readonly state: StateDb, opts: SampleBufferOptions = {}) {
    this.db = state.db;
    this.maxRows = positive('maxRows', opts.maxRows ?? 5000);
    this.maxBytes = positive('maxBytes', opts.maxBytes ?? 256 * 1024 * 1024);
    this.maxAgeMs = positive('maxAgeMs', opts.maxAgeMs ?? 168 * HOUR_MS);
    this.flushMs = positive('flushMs', opts.flushMs ?? 200);
    this.batchSize = positive('batchSize', opts.batchSize ?? 64);
    this.now = opts.now ?? Date.now;
    this.onFlushError = opts.onFlushError;

    const db = this.db;
    this.stmt = {
      insert: db.prepare('INSERT INTO samples (created_ms, bucket, predicted, header, data, bytes) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteOlder: db.prepare('DELETE FROM samples WHERE created_ms < ?'),
      deleteOldestInGroup: db.prepare(
        'DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE predicted IS ? AND bucket = ? ORDER BY created_ms, id LIMIT ?)',
      ),
      groups: db.prepare('SELECT cls, bucket, rows, bytes FROM sample_groups'),
      totals: db.prepare('SELECT IFNULL(SUM(rows), 0) AS rows, IFNULL(SUM(bytes), 0) AS bytes, COUNT(DISTINCT bucket) AS hours FROM sample_groups'),
      // Two queries, not one: SQLite answers a lone MIN or MAX from the index, not both at once.
      oldest: db.prepare('SELECT MIN(created_ms) AS t FROM samples'),
      newest: db.prepare('SELECT MAX(created_ms) AS t FROM samples'),
      perClass: db.prepare('SELECT cls, SUM(rows) AS rows FROM sample_groups GROUP BY cls ORDER BY cls'),
      firstAsc: db.prepare(`SELECT ${COLUMNS} FROM samples ORDER BY created_ms, id LIMIT ?`),
      nextAsc: db.prepare(`SELECT ${COLUMNS} FROM samples WHERE (created_ms, id) > (?, ?) ORDER BY created_ms, id LIMIT ?`),
      firstDesc: db.prepare(`SELECT ${COLUMNS} FROM samples ORDER BY created_ms DESC, id DESC LIMIT ?`),
      nextDesc: db.prepare(`SELECT ${COLUMNS} FROM samples WHERE (created_ms, id) < (?, ?) ORDER BY created_ms DESC, id DESC LIMIT ?`),
    };
    state.onClose(() => this.close());
    // Rows may have aged out, or the bounds shrunk, while the daemon was down.
    this.state.write('samples.evict', () => this.evict());
  }

  /**
   * Queues a sample. Returns false, and stores nothing, when any value is NaN or infinite:
   * such inputs would poison every range estimate. Malformed samples throw DataError.
   */
  add(sample: NewSample): boolean {
    if (this.closed) throw new Error('SampleBuffer is closed');
    validateInputs(sample.inputs);
    const predicted = sample.predicted ?? null;
    if (predicted !== null && !(Number.isSafeInteger(predicted) && predicted >= 0)) {
      throw new DataError(`predicted class must be a whole number ≥ 0, got ${predicted}`, { value: predicted });
    }
    if (!allFinite(sample.inputs)) {
      this.counters.rejectedNonFinite++;
      return false;
    }
    const time = sample.time ?? this.now();
    const { header, data } = encodeInputs(sample.inputs);
    this.queue.push({ time, bucket: Math.floor(time / HOUR_MS), predicted, header, data, bytes: data.byteLength + header.length });
    if (this.queue.length >= this.batchSize) this.flushQuietly();
    else this.armTimer();
    return true;
  }

  /** Writes the queue in one transaction and enforces the bounds. Returns rows written. */
  flush(): number {
    this.disarmTimer();
    if (this.queue.length === 0 || !this.state.isOpen) return 0;
    const batch = this.queue;
    this.queue = [];
    try {
      this.state.write('samples.flush', () => {
        for (const r of batch) this.stmt.insert.run(r.time, r.bucket, r.predicted, r.header, r.data, r.bytes);
        this.evict();
      });
    } catch (err) {
      this.counters.dropped += batch.length;
      throw err;
    }
    this.counters.flushes++;
    return batch.length;
  }

  count(): number {
    return this.stmt.totals.get()!.rows;
  }

  /** Samples accepted by add() and not yet written (the next flush writes them). */
  get queued(): number {
    return this.queue.length;
  }

  bytes(): number {
    return this.stmt.totals.get()!.bytes;
  }

  stats(): BufferStats {
    const totals = this.stmt.totals.get()!;
    const perClass: Record<string, number> = {};
    for (const { cls, rows } of this.stmt.perClass.all()) perClass[cls < 0 ? 'unknown' : String(cls)] = rows;
    return {
      rows: totals.rows,
      bytes: totals.bytes,
      oldest: this.stmt.oldest.get()!.t,
      newest: this.stmt.newest.get()!.t,
      perClass,
      hours: totals.hours,
      ...this.counters,
      pending: this.queue.length,
    };
  }

  /** Stored samples in time order, read a page at a time. Queued samples are not included. */
  *iterate(opts: IterateOptions = {}): Generator<StoredSample> {
    const limit = opts.limit ?? Infinity;
    const pageSize = Math.max(1, opts.pageSize ?? 64);
    const [first, next] = opts.newestFirst ? [this.stmt.firstDesc, this.stmt.nextDesc] : [this.stmt.firstAsc, this.stmt.nextAsc];
    let yielded = 0;
    let last: Row | undefined;
    while (yielded < limit) {
      const page = last === undefined ? first.all(pageSize) : next.all(last.created_ms, last.id, pageSize);
      for (const row of page) {
        yield decodeRow(row);
        if (++yielded >= limit) return;
      }
      if (page.length < pageSize) return;
      last = page[page.length - 1];
    }
  }

  /** Drops every stored and queued sample. */
  clear(): void {
    this.queue = [];
    this.disarmTimer();
    this.state.write('samples.clear', () => {
      this.db.prepare('DELETE FROM samples').run();
    });
  }

  /** Flushes what is queued and stops the timer; the database stays open. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      this.disarmTimer();
    }
  }

  /** Runs inside the caller's transaction. */
  private evict(): void {
    let evicted = 0;
    if (Number.isFinite(this.maxAgeMs)) evicted += this.stmt.deleteOlder.run(this.now() - this.maxAgeMs).changes;
    // The plan estimates bytes from each group's mean row size; re-plan until it is exact.
    for (;;) {
      const steps = planEviction(this.stmt.groups.all(), this.maxRows, this.maxBytes);
      if (steps.length === 0) break;
      for (const s of steps) evicted += this.stmt.deleteOldestInGroup.run(s.cls < 0 ? null : s.cls, s.bucket, s.count).changes;
    }
    this.counters.evicted += evicted;
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushQuietly();
    }, this.flushMs);
    // A pending flush must not keep the process alive; close() flushes on shutdown.
    this.timer.unref();
  }

  /** For the inference path and the timer: a failed write costs samples, never a request. */
  private flushQuietly(): void {
    const pending = this.queue.length;
    try {
      this.flush();
    } catch (err) {
      this.state.logger?.error({ err }, 'sample buffer flush failed; the batch was dropped');
      this.onFlushError?.(err, pending);
    }
  }

  private disarmTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

function decodeRow(r: Row): StoredSample {
  return { id: r.id, time: r.created_ms, bucket: r.bucket, predicted: r.predicted, inputs: decodeInputs(r.header, r.data) };
}

function positive(name: string, v: number): number {
  if (!(v > 0)) throw new RangeError(`SampleBuffer option ${name} must be > 0, got ${v}`);
  return v;
}


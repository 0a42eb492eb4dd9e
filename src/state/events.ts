// The daemon's event history (recalibrations, swaps, rejections, errors) in the state
// database, so `calibd inspect` and the fleet can see what happened across restarts.
// Bounded by count: events are small, rare, and the newest ones are the ones that matter.

import type Database from 'better-sqlite3';
import type { StateDb } from './db.js';

export interface EventRecord {
  id: number;
  time: number;
  type: string;
  data: unknown;
}

export interface EventLogOptions {
  /** Newest events kept; older ones are deleted as new ones arrive. */
  maxEvents?: number;
  now?: () => number;
}

export class EventLog {
  readonly maxEvents: number;
  private readonly now: () => number;
  private readonly db: Database.Database;
  private readonly state: StateDb;
  private readonly stmt: {
    insert: Database.Statement;
    prune: Database.Statement<[number]>;
    list: Database.Statement<[number, number], { id: number; time: number; type: string; data: string | null }>;
    listType: Database.Statement<[number, string, number], { id: number; time: number; type: string; data: string | null }>;
  };

  constructor(state: StateDb, opts: EventLogOptions = {}) {
    this.state = state;
    this.db = state.db;
    this.maxEvents = Math.max(1, Math.floor(opts.maxEvents ?? 10_000));
    this.now = opts.now ?? Date.now;
    this.stmt = {
      insert: this.db.prepare('INSERT INTO events (time, type, data) VALUES (?, ?, ?)'),
      // Ids only grow, so "older than the newest maxEvents" is one range delete on the key.
      prune: this.db.prepare('DELETE FROM events WHERE id <= ?'),
      list: this.db.prepare('SELECT id, time, type, data FROM events WHERE time >= ? ORDER BY id DESC LIMIT ?'),
      listType: this.db.prepare('SELECT id, time, type, data FROM events WHERE time >= ? AND type = ? ORDER BY id DESC LIMIT ?'),
    };
  }

  /** Records an event and returns its id. */
  append(type: string, data?: unknown): number {
    return this.state.write('events.append', () => {
      const id = Number(this.stmt.insert.run(this.now(), type, data === undefined ? null : JSON.stringify(data)).lastInsertRowid);
      if (id > this.maxEvents) this.stmt.prune.run(id - this.maxEvents);
      return id;
    });
  }

  /** Newest first; `since` is a time in ms (inclusive). */
  list(opts: { limit?: number; since?: number; type?: string } = {}): EventRecord[] {
    const since = opts.since ?? 0;
    const limit = opts.limit ?? 100;
    const rows = opts.type !== undefined ? this.stmt.listType.all(since, opts.type, limit) : this.stmt.list.all(since, limit);
    return rows.map((r) => ({ id: r.id, time: r.time, type: r.type, data: r.data === null ? null : (JSON.parse(r.data) as unknown) }));
  }
}

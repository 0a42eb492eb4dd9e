// Calibration profiles, one row per version, in the state database. Versions form a chain
// through `parent` so a rollback knows what it returns to. Exactly one profile may be
// active (a partial unique index guards it), and changing which one is a single
// transaction, so a power cut never leaves zero or two active versions.

import type Database from 'better-sqlite3';
import { OptionError } from '../common/index.js';
import type { StateDb } from './db.js';

export type ProfileState = 'active' | 'accepted' | 'rejected' | 'rolled_back';
export const profileStates: readonly ProfileState[] = ['active', 'accepted', 'rejected', 'rolled_back'];

export interface ProfileFigures {
  /** Share of validation samples where INT8 and FP32 pick the same class, in percent. */
  agreement?: number;
  sqnrDb?: number;
  [name: string]: unknown;
}

export interface ProfileRecord {
  version: number;
  parent: number | null;
  method: string;
  options: Record<string, unknown>;
  sampleCount: number;
  modelSha256: string;
  figures: ProfileFigures;
  state: ProfileState;
  createdAt: number;
  /** The INT8 model file written for this profile, if any. */
  modelPath: string | null;
  /** The calibration profile itself (ranges, quant params), as JSON-able data. */
  profile: unknown;
}

export type NewProfile = Omit<ProfileRecord, 'version' | 'createdAt' | 'state' | 'parent' | 'modelPath' | 'options' | 'figures'> & {
  parent?: number | null;
  options?: Record<string, unknown>;
  figures?: ProfileFigures;
  modelPath?: string | null;
  createdAt?: number;
  /** 'active' goes through setActive, so the previous active one is demoted. Default 'accepted'. */
  state?: ProfileState;
};

interface Row {
  version: number;
  parent: number | null;
  method: string;
  options: string;
  sample_count: number;
  model_sha256: string;
  figures: string;
  state: ProfileState;
  created_at: number;
  model_path: string | null;
  profile: string;
}

export class ProfileStore {
  private readonly db: Database.Database;
  private readonly state: StateDb;
  private readonly stmt: {
    insert: Database.Statement;
    get: Database.Statement<[number], Row>;
    list: Database.Statement<[number], Row>;
    listForModel: Database.Statement<[string, number], Row>;
    active: Database.Statement<[], Row>;
    setState: Database.Statement<[ProfileState, number]>;
    clearModelPath: Database.Statement<[number]>;
    count: Database.Statement<[], number>;
  };

  constructor(state: StateDb) {
    this.state = state;
    this.db = state.db;
    this.stmt = {
      insert: this.db.prepare(
        `INSERT INTO profiles (parent, method, options, sample_count, model_sha256, figures, state, created_at, model_path, profile)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      get: this.db.prepare('SELECT * FROM profiles WHERE version = ?'),
      list: this.db.prepare('SELECT * FROM profiles ORDER BY version DESC LIMIT ?'),
      listForModel: this.db.prepare('SELECT * FROM profiles WHERE model_sha256 = ? ORDER BY version DESC LIMIT ?'),
      active: this.db.prepare("SELECT * FROM profiles WHERE state = 'active'"),
      setState: this.db.prepare('UPDATE profiles SET state = ? WHERE version = ?'),
      clearModelPath: this.db.prepare('UPDATE profiles SET model_path = NULL WHERE version = ?'),
      count: this.db.prepare<[], number>('SELECT COUNT(*) FROM profiles').pluck(),
    };
  }

  /** Stores a profile and returns its version number. */
  insert(p: NewProfile): number {
    const state = p.state ?? 'accepted';
    checkState(state);
    return this.state.write('profiles.insert', () => {
      const info = this.stmt.insert.run(
        p.parent ?? null,
        p.method,
        JSON.stringify(p.options ?? {}),
        p.sampleCount,
        p.modelSha256,
        JSON.stringify(p.figures ?? {}),
        state === 'active' ? 'accepted' : state,
        p.createdAt ?? Date.now(),
        p.modelPath ?? null,
        JSON.stringify(p.profile ?? null),
      );
      const version = Number(info.lastInsertRowid);
      if (state === 'active') this.setActive(version);
      return version;
    });
  }

  /** Stores several profiles in one transaction, in order; returns their versions. */
  insertAll(list: readonly NewProfile[], what = 'profiles.insert'): number[] {
    return this.state.write(what, () => list.map((p) => this.insert(p)));
  }

  /**
   * Forgets the model files of `versions` (their rows stay, as history) in one transaction.
   * The caller deletes the files afterwards, so the database never names a missing file.
   */
  forgetModelFiles(versions: readonly number[]): void {
    this.state.write('profiles.prune', () => {
      for (const v of versions) this.stmt.clearModelPath.run(v);
    });
  }

  count(): number {
    return this.stmt.count.get()!;
  }

  get(version: number): ProfileRecord | undefined {
    const row = this.stmt.get.get(version);
    return row && toRecord(row);
  }

  /** Newest first; at most `limit` (default 50; Infinity for all). */
  list(opts: { limit?: number; modelSha256?: string } = {}): ProfileRecord[] {
    // SQLite reads a negative LIMIT as none.
    const limit = opts.limit === Infinity ? -1 : (opts.limit ?? 50);
    const rows = opts.modelSha256 !== undefined ? this.stmt.listForModel.all(opts.modelSha256, limit) : this.stmt.list.all(limit);
    return rows.map(toRecord);
  }

  active(): ProfileRecord | undefined {
    const row = this.stmt.active.get();
    return row && toRecord(row);
  }

  /**
   * Makes `version` the active profile. The one it replaces becomes 'accepted', or
   * 'rolled_back' when `rollback` is set (it was active and found wanting).
   */
  setActive(version: number, opts: { rollback?: boolean } = {}): void {
    this.state.write('profiles.activate', () => {
      const target = this.stmt.get.get(version);
      if (!target) throw new OptionError(`calibration profile v${version} does not exist`, { value: version });
      if (target.state === 'rejected') {
        throw new OptionError(`calibration profile v${version} was rejected by validation and cannot be activated`, {
          value: version,
          hint: 'activate an accepted or rolled-back version',
        });
      }
      if (target.state === 'active') return;
      const previous = this.stmt.active.get();
      if (previous) this.stmt.setState.run(opts.rollback ? 'rolled_back' : 'accepted', previous.version);
      this.stmt.setState.run('active', version);
    });
  }

  /** Changes a profile's state; use setActive to make one active. */
  setState(version: number, state: Exclude<ProfileState, 'active'>): void {
    checkState(state);
    if ((state as ProfileState) === 'active') {
      throw new OptionError('use setActive to activate a profile, so the previous one is demoted in the same step', { value: state });
    }
    const info = this.state.write('profiles.state', () => this.stmt.setState.run(state, version));
    if (info.changes === 0) throw new OptionError(`calibration profile v${version} does not exist`, { value: version });
  }
}

function checkState(state: string): void {
  if (!(profileStates as readonly string[]).includes(state)) {
    throw new OptionError(`unknown profile state "${state}"`, { value: state, hint: `one of ${profileStates.join(', ')}` });
  }
}

function toRecord(r: Row): ProfileRecord {
  return {
    version: r.version,
    parent: r.parent,
    method: r.method,
    options: JSON.parse(r.options) as Record<string, unknown>,
    sampleCount: r.sample_count,
    modelSha256: r.model_sha256,
    figures: JSON.parse(r.figures) as ProfileFigures,
    state: r.state,
    createdAt: r.created_at,
    modelPath: r.model_path,
    profile: JSON.parse(r.profile) as unknown,
  };
}

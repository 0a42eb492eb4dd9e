// Opens the daemon's one SQLite file (<stateDir>/calibd.db) and keeps it usable. A damaged
// file must not stop the device: instead of crash-looping under systemd, the file and its
// WAL are moved aside for later inspection, a fresh database is created, and an 'error'
// event records what happened. The buffer is a cache of live data and refills itself; the
// calibration versions are rebuilt by the agent from its model files (agent/recovery.ts).
// Closing the failed connection lets SQLite apply and delete a WAL it could read, so what
// is kept aside is the main file as SQLite last saw it, plus any WAL it left in place.

import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StateError, type Logger } from '../common/index.js';


export const DB_FILE = 'calibd.db';
/** Bump when the schema changes, and add a step to `migrate`. */
export const SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS samples (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  created_ms INTEGER NOT NULL,
  bucket     INTEGER NOT NULL,  -- hours since the epoch: the time unit coverage is kept over
  predicted  INTEGER,           -- FP32 model's class; NULL when unknown
  header     TEXT NOT NULL,     -- JSON [{name, dtype, shape, offset, bytes}] into data
  data       BLOB NOT NULL,     -- little-endian tensors, concatenated
  bytes      INTEGER NOT NULL   -- size counted against the byte bound
);
CREATE INDEX IF NOT EXISTS samples_created ON samples(created_ms);
CREATE INDEX IF NOT EXISTS samples_group ON samples(predicted, bucket, created_ms);

-- Row and byte counts per (class, hour), kept by triggers so bounds and eviction never
-- scan the samples table. cls is predicted with NULL mapped to -1, to be a usable key.
CREATE TABLE IF NOT EXISTS sample_groups (
  cls    INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  rows   INTEGER NOT NULL,
  bytes  INTEGER NOT NULL,
  PRIMARY KEY (cls, bucket)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS samples_count_insert AFTER INSERT ON samples BEGIN
  INSERT INTO sample_groups (cls, bucket, rows, bytes) VALUES (IFNULL(new.predicted, -1), new.bucket, 1, new.bytes)
    ON CONFLICT (cls, bucket) DO UPDATE SET rows = rows + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER IF NOT EXISTS samples_count_delete AFTER DELETE ON samples BEGIN
  UPDATE sample_groups SET rows = rows - 1, bytes = bytes - old.bytes
    WHERE cls = IFNULL(old.predicted, -1) AND bucket = old.bucket;
  DELETE FROM sample_groups WHERE cls = IFNULL(old.predicted, -1) AND bucket = old.bucket AND rows <= 0;
END;

CREATE TABLE IF NOT EXISTS profiles (
  version      INTEGER PRIMARY KEY AUTOINCREMENT,
  parent       INTEGER REFERENCES profiles(version),
  method       TEXT NOT NULL,
  options      TEXT NOT NULL,
  sample_count INTEGER NOT NULL,
  model_sha256 TEXT NOT NULL,
  figures      TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('active', 'accepted', 'rejected', 'rolled_back')),
  created_at   INTEGER NOT NULL,
  model_path   TEXT,
  profile      TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS profiles_one_active ON profiles(state) WHERE state = 'active';

CREATE TABLE IF NOT EXISTS events (
  id   INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
`;

export interface OpenStateDbOptions {
  logger?: Logger;
  /**
   * Called inside every write transaction just before it commits, with what it writes
   * (e.g. 'profiles.activate'). A throw rolls the transaction back: the seam through which
   * tests make a commit fail like a full or failing disk would.
   */
  beforeCommit?: (what: string) => void;
}

/** An open calibd.db. Stores built on it register to be closed (and flushed) with it. */
export class StateDb {
  private closers: (() => void)[] = [];
  private closed = false;

  constructor(
    readonly db: Database.Database,
    readonly path: string,
    readonly logger: Logger | undefined,
    /** Where a damaged database was moved on this open, or null. */
    readonly movedAside: string | null,
    private readonly beforeCommit?: (what: string) => void,
  ) {}

  /**
   * Runs `fn` as one transaction. Every store writes through here, so a failed commit
   * (SQLITE_FULL, SQLITE_IOERR) rolls back all of `fn` and can be injected in tests. A
   * nested call joins the outer transaction and commits with it.
   */
  write<T>(what: string, fn: () => T): T {
    const outermost = !this.db.inTransaction;
    return this.db.transaction(() => {
      const result = fn();
      if (outermost) this.beforeCommit?.(what);
      return result;
    })();
  }

  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  close(): void {
    if (this.closed) return;
    let firstError: unknown;
    for (const fn of this.closers.splice(0)) {
      try {
        fn();
      } catch (err) {
        firstError ??= err;
      }
    }
    this.closed = true;
    this.db.close();
    if (firstError !== undefined) throw firstError;
  }
}

export function openStateDb(stateDir: string, opts: OpenStateDbOptions = {}): StateDb {
  makeStateDir(stateDir);
  const path = join(stateDir, DB_FILE);
  checkIsFileOrAbsent(path);
  const first = tryOpen(path);
  if ('db' in first) return new StateDb(first.db, path, opts.logger, null, opts.beforeCommit);

  const movedTo = moveAside(path);
  opts.logger?.error({ path, movedTo, problem: first.problem }, 'state database is damaged; moved aside, starting a fresh one');
  const second = tryOpen(path);
  if (!('db' in second)) {
    throw new StateError(`cannot create a fresh state database at ${path}: ${second.problem}`, {
      value: path,
      hint: `check the disk holding ${stateDir}; the damaged file was kept as ${movedTo}`,
    });
  }
  const state = new StateDb(second.db, path, opts.logger, movedTo, opts.beforeCommit);
  second.db
    .prepare('INSERT INTO events (time, type, data) VALUES (?, ?, ?)')
    .run(Date.now(), 'error', JSON.stringify({ message: 'state database was damaged and has been replaced by an empty one', problem: first.problem, movedTo }));
  return state;
}

type OpenResult = { db: Database.Database } | { problem: string };

/** Creates the state folder; a file in its place is a configuration mistake, said in one line. */
function makeStateDir(stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (err) {
    throw new StateError(`cannot create the state folder ${stateDir}: ${(err as Error).message}`, {
      value: stateDir,
      hint: 'point stateDir at a folder calibd may write, or remove the file in its place',
      cause: err,
    });
  }
}

/** SQLite only says "unable to open database file" for a folder named calibd.db; name it. */
function checkIsFileOrAbsent(path: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    return; // absent (or unreadable, which opening reports)
  }
  if (!isFile) {
    throw new StateError(`the state database ${path} is not a file`, {
      value: path,
      hint: 'move it out of the way (calibd creates calibd.db itself), or point stateDir at another folder',
    });
  }
}

/** SQLite codes that mean the file cannot be opened at all, as opposed to being damaged. */
const CANNOT_OPEN = new Set(['SQLITE_CANTOPEN', 'SQLITE_PERM', 'SQLITE_READONLY', 'SQLITE_AUTH']);

function tryOpen(path: string): OpenResult {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode loses at most the last transactions on power loss, never consistency.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // Keeps the WAL from staying large after a burst of writes on a small flash disk.
    db.pragma('journal_size_limit = 16777216');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      db.close();
      return { problem: `quick_check: ${String(check)}` };
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      return { problem: `schema version ${version} is newer than this calibd understands (${SCHEMA_VERSION})` };
    }
    migrate(db, version);
    return { db };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    db?.close();
    if (typeof code === 'string' && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))) {
      return { problem: (err as Error).message };
    }
    if (typeof code === 'string' && CANNOT_OPEN.has(code)) {
      throw new StateError(`cannot open the state database ${path}: ${(err as Error).message}`, {
        value: path,
        hint: 'check that calibd may read and write the state folder and the file',
        cause: err,
      });
    }
    throw err;
  }
}

function migrate(db: Database.Database, from: number): void {
  if (from === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Every statement is IF NOT EXISTS, so a half-applied start (power cut) is harmless.
    if (from < 1) db.exec(SCHEMA_V1);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

function moveAside(path: string): string {
  const stamp = new Date().toISOString().replace(/:/g, '-');
  let target = `${path}.corrupt-${stamp}`;
  for (let i = 1; existsSync(target); i++) target = `${path}.corrupt-${stamp}-${i}`;
  // Keep SQLite's naming so the three files can be opened together for a post-mortem.
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, target + suffix);
  }
  return target;
}

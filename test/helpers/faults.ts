// Disk faults for the state directory, injected through the two seams calibd's state I/O
// has: an FsOps object for model files (src/common/atomic-file.ts) and the commit hook of
// the state database (src/state/db.ts). Each fault fires once, on the operation it was
// armed for, with the error a full or failing disk gives; everything else runs for real.
import Database from 'better-sqlite3';
import { realFs, type FsOps } from '../../src/common/index.js';

export type FsOp = 'write' | 'fsync' | 'rename' | 'rm';
export type DiskErrno = 'ENOSPC' | 'EIO';
export type SqliteFault = 'SQLITE_FULL' | 'SQLITE_IOERR';

const messages: Record<DiskErrno, string> = { ENOSPC: 'no space left on device', EIO: 'i/o error' };
const sqliteMessages: Record<SqliteFault, string> = { SQLITE_FULL: 'database or disk is full', SQLITE_IOERR: 'disk I/O error' };

export function errnoError(code: DiskErrno, syscall: string, path?: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${messages[code]}, ${syscall}${path ? ` '${path}'` : ''}`);
  err.code = code;
  err.syscall = syscall;
  if (path) err.path = path;
  return err;
}

/** Real file operations, except the one armed, which throws once. */
export class FaultyFs implements FsOps {
  private armed: { op: FsOp; code: DiskErrno; skip: number } | null = null;
  /** Faults that fired, as 'op:code'. */
  readonly fired: string[] = [];

  /** The `nth` call of `op` from now (1: the next one) throws `code`. */
  arm(op: FsOp, code: DiskErrno, nth = 1): void {
    this.armed = { op, code, skip: nth - 1 };
  }

  get pending(): boolean {
    return this.armed !== null;
  }

  private check(op: FsOp, path?: string): void {
    const a = this.armed;
    if (!a || a.op !== op) return;
    if (a.skip-- > 0) return;
    this.armed = null;
    this.fired.push(`${op}:${a.code}`);
    throw errnoError(a.code, op, path);
  }

  openSync(path: string, flags: string, mode?: number): number {
    return realFs.openSync(path, flags, mode);
  }
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number {
    this.check('write');
    return realFs.writeSync(fd, buffer, offset, length);
  }
  fsyncSync(fd: number): void {
    this.check('fsync');
    realFs.fsyncSync(fd);
  }
  closeSync(fd: number): void {
    realFs.closeSync(fd);
  }
  renameSync(from: string, to: string): void {
    this.check('rename', to);
    realFs.renameSync(from, to);
  }
  rmSync(path: string, opts: { force: boolean }): void {
    this.check('rm', path);
    realFs.rmSync(path, opts);
  }
}

/** A beforeCommit hook that fails the next commit whose label starts with the armed prefix. */
export class CommitFaults {
  private armed: { prefix: string; code: SqliteFault } | null = null;
  readonly fired: string[] = [];

  arm(prefix: string, code: SqliteFault): void {
    this.armed = { prefix, code };
  }

  get pending(): boolean {
    return this.armed !== null;
  }

  readonly hook = (what: string): void => {
    const a = this.armed;
    if (!a || !what.startsWith(a.prefix)) return;
    this.armed = null;
    this.fired.push(`${what}:${a.code}`);
    throw new Database.SqliteError(sqliteMessages[a.code], a.code);
  };
}

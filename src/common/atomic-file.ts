// Writes that survive a power cut: data goes to a temporary name in the same folder, is
// fsynced, renamed over the target, and the folder is fsynced so the rename is durable.
// A reader therefore sees either the old file or the new one, never a torn one.
// The file-system calls go through an `FsOps` object so tests can make any one of them
// fail (ENOSPC, EIO) on a real folder without replacing the whole module.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The file-system calls the state directory's writes and deletions make. */
export interface FsOps {
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, opts: { force: boolean }): void;
}

export const realFs: FsOps = { openSync, writeSync, fsyncSync, closeSync, renameSync, rmSync };

/** Errors with which a file system says it cannot fsync a directory, as opposed to failing to. */
const DIR_FSYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EPERM', 'EACCES', 'EBADF']);

export function writeFileAtomic(path: string, data: Uint8Array | string, fs: FsOps = realFs): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd = -1;
  try {
    fd = fs.openSync(tmp, 'w', 0o644);
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, path);
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir, fs);
}

function fsyncDir(dir: string, fs: FsOps): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    // Some file systems refuse fsync on a directory (the rename is still atomic there); an
    // I/O error or a full disk is a failure the caller must hear about.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !DIR_FSYNC_UNSUPPORTED.has(code)) throw err;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

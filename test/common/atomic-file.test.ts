// writeFileAtomic on a real folder with one file-system call failing: the target keeps its
// old bytes, no temporary is left behind, and the caller gets the error.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realFs, writeFileAtomic } from '../../src/common/index.js';
import { FaultyFs, type DiskErrno, type FsOp } from '../helpers/faults.js';

function folderWithFile(): { dir: string; target: string } {
  const dir = mkdtempSync(join(tmpdir(), 'calibd-atomic-'));
  const target = join(dir, 'model.onnx');
  writeFileSync(target, 'old bytes');
  return { dir, target };
}

describe('writeFileAtomic under disk faults', () => {
  const cases: [FsOp, DiskErrno][] = [
    ['write', 'ENOSPC'], ['write', 'EIO'], ['fsync', 'ENOSPC'], ['fsync', 'EIO'], ['rename', 'ENOSPC'], ['rename', 'EIO'],
  ];
  for (const [op, code] of cases) {
    it(`${code} on ${op}: the old file stays whole and no temporary is left`, () => {
      const { dir, target } = folderWithFile();
      const fs = new FaultyFs();
      fs.arm(op, code);
      expect(() => writeFileAtomic(target, 'new bytes', fs)).toThrow(expect.objectContaining({ code }));
      expect(fs.fired).toEqual([`${op}:${code}`]);
      expect(readFileSync(target, 'utf8')).toBe('old bytes');
      expect(readdirSync(dir)).toEqual(['model.onnx']);
      writeFileAtomic(target, 'new bytes', fs);
      expect(readFileSync(target, 'utf8')).toBe('new bytes');
    });
  }

  it('EIO on the folder fsync reaches the caller; a folder that cannot be fsynced does not fail the write', () => {
    const { dir, target } = folderWithFile();
    const fs = new FaultyFs();
    fs.arm('fsync', 'EIO', 2); // the first fsync is the file's, the second the folder's
    expect(() => writeFileAtomic(target, 'new bytes', fs)).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(readdirSync(dir)).toEqual(['model.onnx']);

    // A file system that refuses fsync on folders (EINVAL), as some do.
    let folderFd = -1;
    const refusing = {
      ...realFs,
      openSync(path: string, flags: string, mode?: number): number {
        const fd = realFs.openSync(path, flags, mode);
        if (path === dir) folderFd = fd;
        return fd;
      },
      fsyncSync(fd: number): void {
        if (fd === folderFd) throw Object.assign(new Error('EINVAL: invalid argument, fsync'), { code: 'EINVAL' });
        realFs.fsyncSync(fd);
      },
    };
    writeFileAtomic(target, 'newer bytes', refusing);
    expect(readFileSync(target, 'utf8')).toBe('newer bytes');
  });
});

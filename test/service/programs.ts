// Whether a program is on PATH, for tests that need system tools (python3, systemd-analyze …).
import { spawnSync } from 'node:child_process';

export function hasProgram(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' }).status === 0;
}

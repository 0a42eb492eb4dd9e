// Starts the real daemon (`node bin/calibd.js serve`) as a child process and waits for its
// "calibd ready" log line, which carries the bound port. Used by the demo, the benchmarks
// and the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface DaemonProcess {
  proc: ChildProcess;
  port: number;
  /** stdout lines (JSON logs) and stderr chunks, oldest first. */
  logs: string[];
  url(path: string): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, then wait for the exit. */
  kill9(): Promise<void>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  onLog?: (line: string) => void;
  /** Keep only the newest lines (a long demo logs every request); default: all. */
  maxLogLines?: number;
  readyTimeoutMs?: number;
}

export async function spawnDaemon(repoRoot: string, configPath: string, opts: SpawnOptions = {}): Promise<DaemonProcess> {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  const logs: string[] = [];
  const keep = (line: string) => {
    logs.push(line);
    if (opts.maxLogLines && logs.length > opts.maxLogLines) logs.splice(0, logs.length - opts.maxLogLines);
  };
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => { exitCode = code; resolve(code); }));
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      keep(line);
      opts.onLog?.(line);
      try {
        const j = JSON.parse(line) as { msg?: string; port?: number };
        if (j.msg === 'calibd ready' && j.port) resolve(j.port);
      } catch {
        // not a JSON log line
      }
    });
    proc.stderr!.on('data', (c: Buffer) => keep(c.toString()));
    void exit.then((code) => reject(new Error(`calibd exited (${code}) before it was ready:\n${logs.slice(-40).join('\n')}`)));
    setTimeout(() => reject(new Error(`calibd was not ready within ${timeoutMs / 1000} s:\n${logs.slice(-40).join('\n')}`)), timeoutMs).unref();
  });
  return {
    proc,
    port,
    logs,
    url: (p: string) => `http://127.0.0.1:${port}${p}`,
    async stop() {
      if (exitCode !== undefined) return exitCode;
      proc.kill('SIGTERM');
      return exit;
    },
    async kill9() {
      if (exitCode !== undefined) return;
      proc.kill('SIGKILL');
      await exit;
    },
  };
}

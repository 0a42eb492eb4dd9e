// Starts the real daemon (`node bin/calibd.js serve`) as a child process and waits for its
// "calibd ready" log line, which carries the bound port. Used by the demo and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface DaemonProcess {
  proc: ChildProcess;
  port: number;
  logs: string[];
  url(path: string): string;
  stop(): Promise<number | null>;
}

export async function spawnDaemon(repoRoot: string, configPath: string, onLog?: (line: string) => void): Promise<DaemonProcess> {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin', 'calibd.js'), 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => { exitCode = code; resolve(code); }));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        if (logs.length > 500) logs.splice(0, logs.length - 500); // the tail is what a failure needs
        onLog?.(line);
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'calibd ready' && j.port) resolve(j.port);
        } catch {
          // not a JSON log line
        }
      }
    });
    proc.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    void exit.then((code) => reject(new Error(`calibd exited (${code}) before it was ready:\n${logs.slice(-20).join('\n')}`)));
    setTimeout(() => reject(new Error('calibd was not ready within 60 s')), 60_000).unref();
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
  };
}

// systemd readiness, status and watchdog notification (the sd_notify protocol) for a
// daemon started with Type=notify.
//
// How the datagram is sent, and why:
// sd_notify is one datagram on the AF_UNIX SOCK_DGRAM socket named by $NOTIFY_SOCKET.
// Node can open Unix *stream* sockets (net) and UDP sockets (dgram), but not Unix datagram
// sockets, and it has no FFI, so the process cannot send the datagram itself without a
// native addon (e.g. unix-dgram). A native addon has to be compiled for every ARM board
// and Node ABI we ship to, which is a build we would rather not own for four lines of C.
// So we hand each message to a small program that can:
//
//  - `systemd-notify` (chosen). It ships in the same Debian package as systemd itself, so
//    it is present on every box where $NOTIFY_SOCKET can be set at all (Raspberry Pi OS,
//    Jetson Linux/Ubuntu, plain Debian). It handles abstract sockets ('@name') and, outside
//    a service, happily sends to any socket named by NOTIFY_SOCKET (checked on systemd 252;
//    the tests prove the datagram arrives on a real socket). Because it is a different PID
//    from the daemon, the unit needs NotifyAccess=all. Since systemd 246 it follows each
//    message with BARRIER=1 and waits until the manager has processed it; that closes the
//    race where the short-lived sender exits before systemd can map its PID to our unit
//    (on older systemd, e.g. 245 on Jetson L4T r35, a rare READY/WATCHDOG may be lost;
//    watchdog pings come twice per period, so one loss is tolerated). We therefore do NOT
//    pass --no-block.
//  - python3 (rejected): present on Raspberry Pi OS and Jetson Linux images, but it is
//    not Essential on Debian (a minimal image or container can lack it), and it would be
//    a runtime dependency on an interpreter only to send a datagram.
//  - perl (considered): perl-base is Essential on Debian and has Socket, so it could run
//    as a long-lived helper; but it is a second moving part (respawn, stdin framing) for
//    no gain over systemd-notify on systemd ≥ 246.
//  - socat: not installed by default.
//
// Everything here fails soft: notification is advisory, and a daemon that cannot notify
// must still serve. A missing binary is logged once and disables the notifier; any other
// failure is logged (repeats of the same failure only once) and swallowed. Without NOTIFY_SOCKET there is no notifier at all.

import { execFile } from 'node:child_process';
import { CalibdError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

/** Raised (and only ever logged, never thrown to callers) when a notification fails. */
export class NotifyError extends CalibdError {
  constructor(message: string, opts: { hint?: string; value?: unknown; cause?: unknown } = {}) {
    super('notify', message, opts);
  }
}

/** The notifier only warns. */
type NotifyLogger = Pick<Logger, 'warn'>;

export interface SystemdNotifierOptions {
  /** Program used to send each datagram; found on PATH by default. */
  binary?: string;
  logger?: NotifyLogger;
  /** Upper bound for one send, barrier wait included (systemd's own barrier waits 5 s). */
  timeoutMs?: number;
  /** Our PID, compared with WATCHDOG_PID; injectable for tests. */
  pid?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Status text is one field of a newline-separated message, so it must stay on one line. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 1024);
}

/**
 * Watchdog ping interval in ms, or null when the watchdog is off or meant for another
 * process. systemd's advice is to ping at half of WATCHDOG_USEC.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number = process.pid): number | null {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || usecText === '') return null;
  const usec = Number(usecText);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== '' && Number(pidText) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

export class SystemdNotifier {
  readonly socket: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly binary: string;
  private readonly logger: NotifyLogger | undefined;
  private readonly timeoutMs: number;
  private readonly pid: number;
  /** Set once the sender binary turned out to be missing: no point spawning it again. */
  private disabled = false;
  /** Message of the last failure, so a broken setup logs once, not every watchdog period. */
  private lastFailure: string | null = null;

  constructor(socket: string, env: NodeJS.ProcessEnv = process.env, opts: SystemdNotifierOptions = {}) {
    this.socket = socket;
    this.env = env;
    this.binary = opts.binary ?? 'systemd-notify';
    this.logger = opts.logger;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pid = opts.pid ?? process.pid;
  }

  /** A notifier for the socket systemd gave us, or null when not started by systemd. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, opts: SystemdNotifierOptions = {}): SystemdNotifier | null {
    const socket = env.NOTIFY_SOCKET;
    if (socket === undefined || socket === '') return null;
    return new SystemdNotifier(socket, env, opts);
  }

  /** Tell systemd start-up is complete; a Type=notify unit counts as started only now. */
  ready(status?: string): Promise<void> {
    return status === undefined ? this.notify('READY=1') : this.notify('READY=1', `STATUS=${oneLine(status)}`);
  }

  /** Tell systemd a clean stop has begun, so a slow shutdown is not taken for a hang. */
  stopping(): Promise<void> {
    return this.notify('STOPPING=1');
  }

  /** Free-form text shown by `systemctl status`. */
  status(text: string): Promise<void> {
    return this.notify(`STATUS=${oneLine(text)}`);
  }

  /** Send raw sd_notify assignments (e.g. 'RELOADING=1'); resolves even on failure. */
  async notify(...assignments: string[]): Promise<void> {
    if (this.disabled || assignments.length === 0) return;
    try {
      await this.send(assignments);
      this.lastFailure = null;
    } catch (err) {
      const notifyErr = err instanceof NotifyError
        ? err
        : new NotifyError('sd_notify failed', { value: assignments, cause: err });
      if (notifyErr.message === this.lastFailure) return;
      this.lastFailure = notifyErr.message;
      this.logger?.warn({ err: notifyErr, code: notifyErr.code, socket: this.socket, assignments }, notifyErr.oneLine());
    }
  }

  /**
   * Ping WATCHDOG=1 every WATCHDOG_USEC/2 when systemd armed a watchdog for this process.
   * The timer is unref'd so it never keeps the daemon alive on its own. Returns a stop
   * function (a no-op when no watchdog applies).
   */
  startWatchdog(): () => void {
    const interval = watchdogIntervalMs(this.env, this.pid);
    if (interval === null) return () => {};
    // A ping stuck in the barrier wait must not pile up more senders behind it.
    let inFlight = false;
    const ping = (): void => {
      if (inFlight) return;
      inFlight = true;
      void this.notify('WATCHDOG=1').finally(() => {
        inFlight = false;
      });
    };
    ping();
    const timer = setInterval(ping, interval);
    timer.unref();
    return () => clearInterval(timer);
  }

  private send(assignments: string[]): Promise<void> {
    // Positional VAR=VALUE arguments are understood by every systemd-notify version, unlike
    // some of the newer flags. The sender inherits the daemon's real environment; only the
    // socket comes from the environment this notifier was built from.
    const env = { ...process.env, NOTIFY_SOCKET: this.socket };
    return new Promise((resolve, reject) => {
      execFile(this.binary, assignments, { env, timeout: this.timeoutMs, windowsHide: true }, (err, _stdout, stderr) => {
        if (!err) {
          resolve();
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          this.disabled = true;
          reject(new NotifyError(`${this.binary} not found; systemd notifications are off`, {
            hint: 'install systemd (it ships systemd-notify) or unset NOTIFY_SOCKET',
            value: this.binary,
            cause: err,
          }));
          return;
        }
        const detail = stderr.trim() || err.message;
        reject(new NotifyError(`${this.binary} failed: ${detail}`, {
          hint: 'check NotifyAccess=all in the unit and that NOTIFY_SOCKET names a live socket',
          value: assignments,
          cause: err,
        }));
      });
    });
  }
}

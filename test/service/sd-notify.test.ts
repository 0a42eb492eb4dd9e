import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SystemdNotifier, NotifyError, watchdogIntervalMs } from '../../src/service/sd-notify.js';
import type { Logger } from '../../src/common/index.js';
import { DatagramReceiver } from './dgram-receiver.js';
import { hasProgram } from './programs.js';

const inCI = process.env.CI === 'true';
const missing = ['python3', 'systemd-notify'].filter((p) => !hasProgram(p));
if (missing.length > 0) {
  const msg = `sd-notify datagram tests need ${missing.join(' and ')} (apt-get install -y python3 systemd)`;
  if (inCI) throw new Error(msg);
  console.warn(`SKIP: ${msg}`);
}
const real = missing.length === 0 ? describe : describe.skip;

function recordingLogger(): Pick<Logger, 'warn'> & { calls: Array<{ obj: object; msg?: string }> } {
  const calls: Array<{ obj: object; msg?: string }> = [];
  return { calls, warn: (obj, msg) => { calls.push({ obj, msg }); } };
}

let receiver: DatagramReceiver | undefined;
afterEach(() => {
  receiver?.stop();
  receiver = undefined;
});

real('SystemdNotifier over a real AF_UNIX datagram socket', () => {
  it('delivers READY=1 with STATUS, STATUS, WATCHDOG=1 and STOPPING=1 to a socket path', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'calibd-notify-')), 'notify.sock');
    receiver = await DatagramReceiver.start(socket);
    const logger = recordingLogger();
    const env = { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) };
    const notifier = SystemdNotifier.fromEnv(env, { logger });
    expect(notifier).not.toBeNull();

    await notifier!.ready('model loaded\nserving');
    await notifier!.status('recalibrating');
    const stop = notifier!.startWatchdog();
    // 100 ms period: an immediate ping plus interval pings.
    await receiver.waitFor((m) => m === 'WATCHDOG=1');
    await new Promise((r) => setTimeout(r, 250));
    stop();
    // A ping already handed to systemd-notify may still land; let it settle before counting.
    await new Promise((r) => setTimeout(r, 200));
    await notifier!.stopping();

    await receiver.waitFor((m) => m === 'STOPPING=1');
    const msgs = receiver.messages;
    expect(msgs).toContain('READY=1\nSTATUS=model loaded serving');
    expect(msgs).toContain('STATUS=recalibrating');
    expect(msgs.filter((m) => m === 'WATCHDOG=1').length).toBeGreaterThanOrEqual(2);
    expect(logger.calls).toEqual([]);
    // Stopped means stopped: no pings after the stop function ran.
    const pings = msgs.filter((m) => m === 'WATCHDOG=1').length;
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.messages.filter((m) => m === 'WATCHDOG=1').length).toBe(pings);
  });

  it('works with an abstract-namespace socket (@name)', async () => {
    const socket = `@calibd-test-${randomBytes(6).toString('hex')}`;
    receiver = await DatagramReceiver.start(socket);
    const notifier = SystemdNotifier.fromEnv({ NOTIFY_SOCKET: socket });
    await notifier!.ready();
    await notifier!.stopping();
    await receiver.waitFor((m) => m === 'STOPPING=1');
    expect(receiver.messages).toContain('READY=1');
  });

  it('logs but does not throw when nobody listens on the socket', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'calibd-notify-')), 'nobody.sock');
    const logger = recordingLogger();
    const notifier = SystemdNotifier.fromEnv({ NOTIFY_SOCKET: socket }, { logger })!;
    await expect(notifier.ready()).resolves.toBeUndefined();
    await expect(notifier.notify('WATCHDOG=1')).resolves.toBeUndefined();
    // The same failure twice is logged once, so a dead socket does not flood the journal.
    expect(logger.calls).toHaveLength(1);
    expect((logger.calls[0]!.obj as { err: unknown }).err).toBeInstanceOf(NotifyError);
  });
});

describe('SystemdNotifier without systemd', () => {
  it('fromEnv is null when NOTIFY_SOCKET is unset or empty', () => {
    expect(SystemdNotifier.fromEnv({})).toBeNull();
    expect(SystemdNotifier.fromEnv({ NOTIFY_SOCKET: '' })).toBeNull();
  });

  it('a missing sender binary is logged once and never throws', async () => {
    const logger = recordingLogger();
    const notifier = SystemdNotifier.fromEnv(
      { NOTIFY_SOCKET: '/nonexistent/notify.sock', WATCHDOG_USEC: '1000000' },
      { logger, binary: '/nonexistent/systemd-notify' },
    )!;
    await expect(notifier.ready('x')).resolves.toBeUndefined();
    await expect(notifier.status('y')).resolves.toBeUndefined();
    await expect(notifier.stopping()).resolves.toBeUndefined();
    notifier.startWatchdog()();
    expect(logger.calls).toHaveLength(1);
    const err = (logger.calls[0]!.obj as { err: NotifyError }).err;
    expect(err).toBeInstanceOf(NotifyError);
    expect(err.code).toBe('notify');
    expect(logger.calls[0]!.msg).toMatch(/not found/);
  });

  it('arms the watchdog only for this PID and a valid WATCHDOG_USEC', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42)).toBeNull();
    expect(watchdogIntervalMs({}, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'abc' }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42)).toBeNull();
  });
});

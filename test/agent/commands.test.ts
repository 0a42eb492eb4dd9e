// The command table shared by HTTP and MQTT, with plain values: what each command takes,
// the one error (code 'option', naming the field or value) for anything else, and that a
// refused command never reaches the agent.
import { describe, expect, it } from 'vitest';
import { checkArguments, commandNames, commands, runCommand } from '../../src/agent/commands.js';
import { OptionError } from '../../src/common/index.js';
import { parseConfig } from '../../src/config/index.js';
import { paths } from '../helpers/paths.js';
import { thrown } from '../helpers/thrown.js';

function refusal(fn: () => unknown): OptionError {
  return thrown(OptionError, fn);
}

describe('command arguments', () => {
  it('recalibrate takes method and full', () => {
    expect(checkArguments('recalibrate', {})).toEqual({});
    expect(checkArguments('recalibrate', { method: 'entropy', full: true })).toEqual({ method: 'entropy', full: true });
    expect(refusal(() => checkArguments('recalibrate', { method: 'fast' })).oneLine()).toBe("unknown calibration method 'fast': use one of minmax, percentile, entropy, mse");
    expect(refusal(() => checkArguments('recalibrate', { full: 'yes' }))).toMatchObject({ code: 'option', value: 'yes', message: "'full' must be true or false" });
  });

  it('rollback takes a positive integer version', () => {
    expect(checkArguments('rollback', { version: 3 })).toEqual({ version: 3 });
    expect(checkArguments('rollback', {})).toEqual({});
    for (const version of [0, -1, 1.5, '2', null, 2 ** 60]) {
      expect(refusal(() => checkArguments('rollback', { version }))).toMatchObject({ code: 'option', value: version, message: "'version' must be a positive integer" });
    }
  });

  it('refuses unknown fields, naming the field and what is allowed', () => {
    const err = refusal(() => checkArguments('recalibrate', { method: 'mse', fulll: true }));
    expect(err).toMatchObject({ code: 'option', value: 'fulll' });
    expect(err.oneLine()).toBe("recalibrate: unknown field 'fulll': allowed: method, full");
    expect(refusal(() => checkArguments('rollback', { version: 2, evil: 1 })).oneLine()).toBe("rollback: unknown field 'evil': allowed: version");
    // The MQTT envelope (transaction, ts, sig) is the MQTT adapter's to strip, not an argument.
    expect(refusal(() => checkArguments('rollback', { version: 2, transaction: 'a' })).value).toBe('transaction');
    expect(refusal(() => checkArguments('status', { verbose: true })).oneLine()).toBe("status: unknown field 'verbose': this command takes no arguments");
  });

  it('apply takes a calibration object and a margin of at least 0', () => {
    const calibration = { format: 'calibd-ranges' };
    expect(checkArguments('apply', { calibration, margin: 0.5 })).toEqual({ calibration, margin: 0.5 });
    expect(checkArguments('apply', { calibration })).toEqual({ calibration });
    expect(refusal(() => checkArguments('apply', {})).message).toMatch(/'calibration' must be a fleet calibration object/);
    expect(refusal(() => checkArguments('apply', { calibration: [1] })).message).toMatch(/'calibration' must be a fleet calibration object/);
    expect(refusal(() => checkArguments('apply', { calibration, margin: -1 }))).toMatchObject({ code: 'option', value: -1 });
    expect(refusal(() => checkArguments('stats', { all: true })).oneLine()).toBe("stats: unknown field 'all': this command takes no arguments");
    expect(checkArguments('export', { format: 'tensorrt-cache', trtVersion: 10300 })).toEqual({ format: 'tensorrt-cache', trtVersion: 10300 });
    expect(refusal(() => checkArguments('export', { format: 'onnx' })).oneLine()).toBe("unknown export format 'onnx': use one of tensorrt-cache");
    expect(refusal(() => checkArguments('export', { format: 'tensorrt-cache', trtVersion: 8.6 })).message).toMatch(/positive integer/);
  });

  it('config/set needs a string key and a value', () => {
    expect(checkArguments('config/set', { key: 'sampling.oneIn', value: 3 })).toEqual({ key: 'sampling.oneIn', value: 3 });
    expect(refusal(() => checkArguments('config/set', { key: 7, value: 3 })).message).toBe("config/set needs 'key' (a string) and 'value'");
    expect(refusal(() => checkArguments('config/set', { key: 'sampling.oneIn' })).message).toBe("config/set needs 'value'");
  });

  it('lists each command once, with the state-changing ones marked', () => {
    expect(commandNames).toEqual(['recalibrate', 'rollback', 'stats', 'apply', 'export', 'status', 'calibrations', 'config/get', 'config/set', 'buffer/stats', 'buffer/clear']);
    expect(commandNames.filter((n) => commands[n].mutating)).toEqual(['recalibrate', 'rollback', 'apply', 'config/set', 'buffer/clear']);
    for (const n of commandNames) expect(commands[n].name).toBe(n);
  });
});

describe('running a command', () => {
  const config = parseConfig({ model: paths.mnistModel, stateDir: '/nonexistent', http: { token: 'a-secret-token-0123456789abcdef' } });
  /** Records what reaches it: a refused command must not. */
  function target() {
    const calls: string[] = [];
    let rows = 4;
    return {
      calls,
      config,
      status: () => ({ ok: true }),
      calibrations: () => [{ version: 1 }],
      recalibrate: async (req: object) => (calls.push(`recalibrate ${JSON.stringify(req)}`), { version: 2, state: 'accepted' as const, figures: {} }),
      rollback: async (req: { version?: number }) => (calls.push(`rollback ${JSON.stringify(req)}`), { version: req.version ?? 1 }),
      applyConfig: (key: string, value: unknown) => (calls.push(`set ${key}`), value),
      buffer: { stats: () => ({ rows }), clear: () => void (rows = 0), count: () => rows },
    };
  }

  it('checks first and calls the agent only with checked arguments', async () => {
    const t = target();
    await expect(runCommand('rollback', t, { version: 0 })).rejects.toMatchObject({ code: 'option' });
    await expect(runCommand('rollback', t, { version: 2, evil: 1 })).rejects.toMatchObject({ code: 'option', value: 'evil' });
    expect(t.calls).toEqual([]);
    expect(await runCommand('rollback', t, { version: 2 })).toEqual({ version: 2 });
    expect(await runCommand('calibrations', t, {})).toEqual({ calibrations: [{ version: 1 }] });
    expect(await runCommand('buffer/clear', t, {})).toEqual({ cleared: 4 });
    expect(await runCommand('config/set', t, { key: 'sampling.oneIn', value: 9 })).toEqual({ key: 'sampling.oneIn', value: 9, previous: config.sampling.oneIn });
    expect(t.calls).toEqual(['rollback {"version":2}', 'set sampling.oneIn']);
  });

  it('config/get reads from the redacted config: secrets never leave', async () => {
    const t = target();
    const http = (await runCommand('config/get', t, { key: 'http' })) as { value: { token: string } };
    expect(http.value.token).not.toContain('a-secret');
    expect(JSON.stringify(await runCommand('config/get', t, {}))).not.toContain('a-secret');
    await expect(runCommand('config/get', t, { key: 'no.such' })).rejects.toMatchObject({ code: 'option', message: 'no config key no.such' });
  });
});

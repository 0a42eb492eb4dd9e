import { describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  ConfigError, applyRuntimeChange, cronProblem, loadConfig, runtimeTunableKeys, sanitizeDeviceId, type CalibdConfig,
} from '../../src/config/index.js';
import { CalibdError } from '../../src/common/index.js';
import { repoRoot } from '../helpers/paths.js';
import { thrown } from '../helpers/thrown.js';

// loadConfig reads process.env by default; the runner's own CALIBD_* must not leak in.
for (const k of Object.keys(process.env)) if (k.startsWith('CALIBD_')) delete process.env[k];

const dir = mkdtempSync(join(tmpdir(), 'calibd-config-'));
let n = 0;
function file(ext: string, text: string): string {
  const p = join(dir, `c${n++}${ext}`);
  writeFileSync(p, text);
  return p;
}

/** The ConfigError `fn` throws; fails the test when it throws nothing or something else. */
function configError(fn: () => unknown): ConfigError {
  return thrown(ConfigError, fn);
}

describe('defaults', () => {
  it('fills every key, resolves paths against the cwd and derives names', () => {
    const c = loadConfig({ env: {} });
    expect(c.model).toBe(resolve('models/mnist-cnn.onnx'));
    expect(c.modelName).toBe('mnist-cnn');
    expect(c.deviceId).toBe(sanitizeDeviceId(hostname()));
    expect(c.deviceId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(c.stateDir).toBe(resolve('./var'));
    expect(c.http).toEqual({ host: '127.0.0.1', port: 8080, maxBodyBytes: 8 * 1024 * 1024, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 64 });
    expect(c.threads).toBe(1);
    expect(c.sampling).toEqual({ oneIn: 10, maxRows: 5000, maxBytes: 256 * 1024 * 1024, maxAgeHours: 168 });
    expect(c.recalibration).toEqual({
      everyInferences: 2000, cron: null, method: 'mse', perChannel: true, activationType: 'auto', biasCorrection: 'none', equalization: 'none', maxMemoryMB: null, minSamples: 100,
      validationSlice: 200, gateMargin: 0, driftThreshold: 0.2, forgetting: 0.98, auto: false,
    });
    expect(c.validation).toEqual({ metric: null, floor: null });
    expect(c.retention).toEqual({ keepVersions: 10 });
    expect(c.firstBoot).toBe('datafree');
    expect(c.inputShapes).toBeNull();
    expect(c.inputRange).toEqual({ min: 0, max: 1 });
    expect(c.mqtt).toBeNull();
    expect(c.log).toEqual({ level: 'info' });
  });

  it('fills mqtt defaults when the section is present', () => {
    const c = loadConfig({ overrides: { mqtt: {} } });
    expect(c.mqtt).toEqual({ url: 'embedded', baseTopic: 'calibd', protocolVersion: 5, keepalive: 30, metricsIntervalSec: 30, queueMax: 1000, embeddedPort: 1883, signingWindowSec: 30, backoffMaxMs: 30_000 });
  });

  it('refuses a bad validation metric and the daemon-less bias correction, each with a reason', () => {
    expect(() => loadConfig({ overrides: { validation: { metric: 'mask-iou:2' } } })).toThrow(/validation\.metric.*mask-iou/);
    expect(() => loadConfig({ overrides: { recalibration: { biasCorrection: 'empirical' } } })).toThrow(/not available in the daemon/);
    expect(() => loadConfig({ overrides: { recalibration: { equalization: 'activations' } } })).toThrow(/not available in the daemon/);
    expect(() => loadConfig({ overrides: { recalibration: { maxMemoryMB: 4 } } })).toThrow(/maxMemoryMB/);
    expect(() => loadConfig({ overrides: { retention: { keepVersions: 0 } } })).toThrow(/retention\.keepVersions/);
    expect(loadConfig({ overrides: { validation: { metric: 'mask-iou:0.3' } } }).validation.metric).toBe('mask-iou:0.3');
  });

  it('preprocess: a preset name or a spec object, resolved to the full spec; a misspelt preset is refused', () => {
    expect(loadConfig({}).preprocess).toBeNull();
    expect(loadConfig({ overrides: { preprocess: 'mnist' } }).preprocess).toMatchObject({ size: [28, 28], color: 'gray', layout: 'nchw' });
    expect(loadConfig({ overrides: { preprocess: { size: [4, 2], color: 'bgr' } } }).preprocess).toMatchObject({ size: [4, 2], color: 'bgr', resize: 'stretch' });
    expect(() => loadConfig({ overrides: { preprocess: 'mnsit' } })).toThrow(/preprocess.*must be a preset/);
    expect(() => loadConfig({ overrides: { preprocess: { size: [4, 2], colour: 'bgr' } } })).toThrow(/preprocess/);
  });

  it('sanitises host names into device ids', () => {
    expect(sanitizeDeviceId('edge box.local')).toBe('edge_box_local');
    expect(sanitizeDeviceId('')).toBe('calibd');
  });

  it('bundled config/default.yaml validates and matches the schema defaults', () => {
    const c = loadConfig({ file: join(repoRoot, 'config', 'default.yaml') });
    const d = loadConfig({ overrides: { mqtt: {} } });
    expect(c).toEqual(d);
  });
});

describe('files', () => {
  it('reads YAML', () => {
    const c = loadConfig({
      file: file('.yaml', 'model: /opt/m/resnet.onnx\nhttp:\n  port: 9000\nrecalibration:\n  method: entropy\n  cron: "*/15 * * * *"\nmqtt:\n  url: mqtts://broker:8883\n  protocolVersion: 4\n'),
    });
    expect(c.model).toBe('/opt/m/resnet.onnx');
    expect(c.modelName).toBe('resnet');
    expect(c.http.port).toBe(9000);
    expect(c.http.host).toBe('127.0.0.1');
    expect(c.recalibration.method).toBe('entropy');
    expect(c.recalibration.cron).toBe('*/15 * * * *');
    expect(c.mqtt).toMatchObject({ url: 'mqtts://broker:8883', protocolVersion: 4, baseTopic: 'calibd' });
  });

  it('reads .yml and JSON, and an empty YAML file means defaults', () => {
    expect(loadConfig({ file: file('.yml', 'threads: 2\n') }).threads).toBe(2);
    const c = loadConfig({ file: file('.json', JSON.stringify({ sampling: { oneIn: 3 }, stateDir: 'state' })) });
    expect(c.sampling.oneIn).toBe(3);
    expect(c.stateDir).toBe(resolve('state'));
    expect(loadConfig({ file: file('.yaml', '# nothing\n') }).threads).toBe(1);
  });

  it('resolves relative paths against the working directory, not the file folder', () => {
    const c = loadConfig({ file: file('.yaml', 'model: m/x.onnx\nstateDir: s\nmqtt:\n  ca: certs/ca.pem\n') });
    expect(c.model).toBe(join(process.cwd(), 'm/x.onnx'));
    expect(c.stateDir).toBe(join(process.cwd(), 's'));
    expect(c.mqtt?.ca).toBe(join(process.cwd(), 'certs/ca.pem'));
  });

  it('mqtt: null turns MQTT off', () => {
    expect(loadConfig({ file: file('.yaml', 'mqtt: null\n') }).mqtt).toBeNull();
  });

  it("mqtt.url: off in a file turns MQTT off, as CALIBD_MQTT_URL=off does", () => {
    expect(loadConfig({ file: file('.yaml', 'mqtt:\n  url: off\n  baseTopic: x\n') }).mqtt).toBeNull();
    expect(loadConfig({ file: file('.yaml', 'mqtt: OFF\n') }).mqtt).toBeNull();
    expect(loadConfig({ file: file('.json', '{"mqtt": {"url": "off"}}') }).mqtt).toBeNull();
    // The environment still has the last word.
    expect(loadConfig({ file: file('.yaml', 'mqtt:\n  url: off\n'), env: { CALIBD_MQTT_URL: 'mqtt://b:1883' } }).mqtt?.url).toBe('mqtt://b:1883');
  });

  it('a missing file names the file', () => {
    const e = configError(() => loadConfig({ file: join(dir, 'nope.yaml') }));
    expect(e.message).toContain('nope.yaml');
    expect(e.message).toContain('does not exist');
    expect(e.file).toBe(join(dir, 'nope.yaml'));
  });

  it.skipIf(process.getuid?.() === 0)('an unreadable file names the file', () => {
    const p = file('.yaml', 'threads: 1\n');
    chmodSync(p, 0o000);
    expect(configError(() => loadConfig({ file: p })).message).toContain('not readable');
  });

  it('a path that cannot be read as a file names the file and the reason', () => {
    const p = join(dir, 'folder.yaml');
    mkdirSync(p);
    const e = configError(() => loadConfig({ file: p }));
    expect(e.message).toBe(`config file ${p} cannot be read (EISDIR)`);
    expect(e.file).toBe(p);
  });

  it('a YAML syntax error names the file and line', () => {
    const p = file('.yaml', 'threads: 1\nhttp:\n  port: 80\n  host: [unclosed\nlog:\n  level: info\n');
    const e = configError(() => loadConfig({ file: p }));
    expect(e.message).toMatch(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: YAML syntax error`));
    expect(e.line).toBeGreaterThanOrEqual(4);
  });

  it('an unquoted cron starting with * is a YAML error with a hint', () => {
    const p = file('.yaml', 'recalibration:\n  cron: */5 * * * *\n');
    const e = configError(() => loadConfig({ file: p }));
    expect(e.line).toBe(2);
    expect(e.hint).toContain('quote');
  });

  it('duplicate YAML keys are an error', () => {
    const e = configError(() => loadConfig({ file: file('.yaml', 'threads: 1\nthreads: 2\n') }));
    expect(e.line).toBe(2);
  });

  it('a JSON syntax error names the file and line', () => {
    const p = file('.json', '{\n  "threads": 1,\n  "http": { "port": 80, }\n}\n');
    const e = configError(() => loadConfig({ file: p }));
    expect(e.message).toContain('JSON syntax error');
    expect(e.line).toBe(3);
  });

  it('refuses other file types and non-mapping documents', () => {
    expect(configError(() => loadConfig({ file: file('.toml', 'a = 1') })).message).toContain('unsupported');
    expect(configError(() => loadConfig({ file: file('.yaml', '- a\n- b\n') })).message).toContain('mapping');
  });

  it('a schema error in a file names file, line, key, value and allowed values', () => {
    const p = file('.yaml', 'threads: 1\nrecalibration:\n  everyInferences: 10\n  method: median\n');
    const e = configError(() => loadConfig({ file: p }));
    expect(e.message).toBe(`${p}:4: config key recalibration.method: "median" is not allowed; expected one of "minmax", "percentile", "entropy", "mse"`);
    expect(e.key).toBe('recalibration.method');
    expect(e.line).toBe(4);
    expect(e.value).toBe('median');
    expect(e.code).toBe('config');
    expect(e).toBeInstanceOf(CalibdError);
  });

  it('an alias without its anchor (found by the fuzz harness) is a ConfigError, not a stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-config-'));
    for (const text of ['*!', 'model: *m', 'http: { port: *p }']) {
      const file = join(dir, 'alias.yaml');
      writeFileSync(file, text);
      const e = configError(() => loadConfig({ file, env: {} }));
      expect(e.message).toContain('alias.yaml');
      expect(e.message).not.toContain('\n');
    }
  });

  it('an unknown key in a file is an error at its line, with a suggestion', () => {
    const p = file('.yaml', 'sampling:\n  oneIn: 5\n  maxRow: 10\n');
    const e = configError(() => loadConfig({ file: p }));
    expect(e.key).toBe('sampling.maxRow');
    expect(e.line).toBe(3);
    expect(e.message).toContain('unknown key (did you mean "maxRows"?)');
    expect(e.hint).toContain('maxRows');
  });

  it('locates errors in JSON files too', () => {
    const p = file('.json', '{\n  "http": {\n    "port": -1\n  }\n}\n');
    const e = configError(() => loadConfig({ file: p }));
    expect(e.key).toBe('http.port');
    expect(e.line).toBe(3);
  });
});

describe('environment overrides', () => {
  const cases: [string, string, (c: CalibdConfig) => unknown, unknown][] = [
    ['CALIBD_MODEL', '/models/a.onnx', (c) => c.model, '/models/a.onnx'],
    ['CALIBD_MODEL_NAME', 'digits', (c) => c.modelName, 'digits'],
    ['CALIBD_STATE_DIR', '/var/lib/calibd', (c) => c.stateDir, '/var/lib/calibd'],
    ['CALIBD_HTTP_HOST', '0.0.0.0', (c) => c.http.host, '0.0.0.0'],
    ['CALIBD_HTTP_PORT', '9090', (c) => c.http.port, 9090],
    ['CALIBD_HTTP_TOKEN', 's3cret', (c) => c.http.token, 's3cret'],
    ['CALIBD_MQTT_URL', 'mqtt://broker:1883', (c) => c.mqtt?.url, 'mqtt://broker:1883'],
    ['CALIBD_DEVICE_ID', 'cam-7', (c) => c.deviceId, 'cam-7'],
    ['CALIBD_THREADS', '4', (c) => c.threads, 4],
    ['CALIBD_LOG_LEVEL', 'debug', (c) => c.log.level, 'debug'],
  ];
  for (const [name, value, pick, expected] of cases) {
    it(`${name} overrides the file`, () => {
      const p = file('.yaml', 'model: models/x.onnx\nmodelName: x\nstateDir: ./s\nthreads: 2\ndeviceId: d\nhttp:\n  host: 127.0.0.2\n  port: 1\n  token: t\nmqtt:\n  url: embedded\nlog:\n  level: warn\n');
      expect(pick(loadConfig({ file: p, env: { [name]: value } }))).toEqual(expected);
    });
  }

  it('reads process.env when no env is given', () => {
    process.env.CALIBD_THREADS = '6';
    try {
      expect(loadConfig().threads).toBe(6);
      expect(loadConfig({ env: {} }).threads).toBe(1);
    } finally {
      delete process.env.CALIBD_THREADS;
    }
  });

  it('CALIBD_MQTT_URL=off turns MQTT off; empty variables are ignored', () => {
    const p = file('.yaml', 'mqtt:\n  url: embedded\n');
    expect(loadConfig({ file: p, env: { CALIBD_MQTT_URL: 'off' } }).mqtt).toBeNull();
    expect(loadConfig({ file: p, env: { CALIBD_MQTT_URL: '', CALIBD_THREADS: ' ' } }).mqtt?.url).toBe('embedded');
  });

  it('CALIBD_MQTT_URL creates the mqtt section with defaults when the file has none', () => {
    const c = loadConfig({ env: { CALIBD_MQTT_URL: 'ws://broker:9001' } });
    expect(c.mqtt).toMatchObject({ url: 'ws://broker:9001', baseTopic: 'calibd', protocolVersion: 5 });
  });

  it('an invalid number names the variable', () => {
    for (const name of ['CALIBD_HTTP_PORT', 'CALIBD_THREADS']) {
      const e = configError(() => loadConfig({ env: { [name]: '8o8o' } }));
      expect(e.message).toContain(name);
      expect(e.message).toContain('"8o8o"');
    }
  });

  it('a schema error in an environment value names the variable and the key', () => {
    const e = configError(() => loadConfig({ env: { CALIBD_HTTP_PORT: '70000' } }));
    expect(e.message).toBe('config key http.port (from CALIBD_HTTP_PORT): 70000 is too big; must be ≤ 65535');
    expect(e.file).toBeUndefined();
    const l = configError(() => loadConfig({ env: { CALIBD_LOG_LEVEL: 'loud' } }));
    expect(l.message).toContain('log.level (from CALIBD_LOG_LEVEL)');
    expect(l.message).toContain('"info"');
  });

  it('overrides beat the environment', () => {
    const c = loadConfig({ env: { CALIBD_THREADS: '3' }, overrides: { threads: 2, sampling: { oneIn: 1 } } });
    expect(c.threads).toBe(2);
    expect(c.sampling.oneIn).toBe(1);
    expect(c.sampling.maxRows).toBe(5000);
  });
});

describe('validation messages', () => {
  const bad: [string, object, string][] = [
    ['enum', { firstBoot: 'gpu' }, 'config key firstBoot: "gpu" is not allowed; expected one of "datafree", "fp32"'],
    ['literal', { mqtt: { protocolVersion: 3 } }, 'config key mqtt.protocolVersion: 3 is not allowed; expected one of 5, 4'],
    ['type', { http: { port: '80' } }, 'config key http.port: "80" is a string; expected a number'],
    ['integer', { sampling: { oneIn: 2.5 } }, 'config key sampling.oneIn: 2.5 is a fractional number; expected an integer'],
    ['minimum', { threads: 0 }, 'config key threads: 0 is too small; must be ≥ 1'],
    ['maximum', { recalibration: { forgetting: 1.5 } }, 'config key recalibration.forgetting: 1.5 is too big; must be ≤ 1'],
    ['exclusive minimum', { recalibration: { driftThreshold: 0 } }, 'config key recalibration.driftThreshold: 0 is too small; must be > 0'],
    ['boolean', { recalibration: { perChannel: 'yes' } }, 'config key recalibration.perChannel: "yes" is a string; expected a boolean'],
    ['cron', { recalibration: { cron: '61 * * * *' } }, 'config key recalibration.cron: "61 * * * *" is not a cron expression: 61 is a invalid expression for minute'],
    ['url', { mqtt: { url: 'http://broker' } }, "config key mqtt.url: \"http://broker\" must be 'embedded' or a broker URL starting with mqtt://, mqtts://, ws:// or wss://"],
    ['device id', { deviceId: 'a/b' }, 'config key deviceId: "a/b" must be 1-64 characters'],
    ['topic', { mqtt: { baseTopic: 'calibd/#' } }, 'config key mqtt.baseTopic: "calibd/#" must be topic levels'],
    ['model extension', { model: 'm.pt' }, 'config key model: "m.pt" must be a path to an .onnx file'],
    ['input range', { inputRange: { min: 1, max: 1 } }, 'config key inputRange.max: 1 must be above inputRange.min (1)'],
    ['cross-key', { recalibration: { minSamples: 50 }, sampling: { maxRows: 10 } }, 'config key recalibration.minSamples: 50 must not exceed sampling.maxRows (10)'],
    ['paired keys', { mqtt: { cert: 'c.pem' } }, 'config key mqtt.key: is required when mqtt.cert is set'],
    ['section type', { http: 8080 }, 'config key http: 8080 is a number; expected a mapping'],
  ];
  for (const [what, overrides, message] of bad) {
    it(`${what}`, () => {
      const e = configError(() => loadConfig({ overrides }));
      expect(e.message.startsWith(message), e.message).toBe(true);
    });
  }

  it('an error about a section holding a secret never shows the secret', () => {
    for (const http of [{ token: 'sekrit-token-abc', bogus: 1 }, { token: 'sekrit-token-abc', port: 'x' }, { token: 7 }]) {
      const e = configError(() => loadConfig({ overrides: { http } }));
      expect(e.message).not.toContain('sekrit-token-abc');
      expect(JSON.stringify(e.value ?? null)).not.toContain('sekrit-token-abc');
    }
  });

  it('unknown top-level and nested keys are errors naming the key', () => {
    const top = configError(() => loadConfig({ overrides: { treads: 2 } }));
    expect(top.key).toBe('treads');
    expect(top.message).toContain('did you mean "threads"');
    const nested = configError(() => loadConfig({ overrides: { mqtt: { brokerUrl: 'x' } } }));
    expect(nested.key).toBe('mqtt.brokerUrl');
    expect(nested.hint).toMatch(/^allowed keys under mqtt: url, baseTopic/);
  });

  it('never prints the HTTP token', () => {
    const e = configError(() => loadConfig({ overrides: { http: { token: '' } } }));
    expect(e.message).toBe('config key http.token: (hidden value) must not be empty');
  });

  it('counts further problems', () => {
    const e = configError(() => loadConfig({ overrides: { threads: 0, log: { level: 'x' } } }));
    expect(e.message).toContain('1 more problem');
  });
});

describe('cron check', () => {
  it('accepts node-cron syntax', () => {
    // 5-1: node-cron wraps a backwards range (minutes 5..59 and 0..1).
    for (const ok of ['* * * * *', '0 3 * * *', '*/5 * * * *', '0 0 1-15/2 jan,Mar-may mon-fri', '30 */10 9-17 * * 1-5', '0 0 * * 7', '0 0 * * SUNDAY', '5-1 * * * *']) {
      expect(cronProblem(ok), ok).toBeNull();
    }
  });
  it('refuses bad fields', () => {
    for (const bad of ['* * * *', '* * * * * * *', '0 24 * * *', '0 0 0 * *', '0 0 * 13 *', '0 0 * * 8', '*/0 * * * *', 'a * * * *', '0 0 * foo *', '0 0 31 2 *']) {
      expect(cronProblem(bad), bad).not.toBeNull();
    }
  });
});

describe('applyRuntimeChange', () => {
  const base = loadConfig({ env: {} });

  it('changes each tunable key and leaves the input untouched', () => {
    const values: Record<string, unknown> = {
      'sampling.oneIn': 3,
      'recalibration.everyInferences': 0,
      'recalibration.cron': '0 4 * * *',
      'recalibration.method': 'mse',
      'recalibration.gateMargin': 0.5,
      'recalibration.driftThreshold': 0.3,
    };
    expect(Object.keys(values).sort()).toEqual([...runtimeTunableKeys].sort());
    for (const [key, value] of Object.entries(values)) {
      const next = applyRuntimeChange(base, key, value);
      const [s, k] = key.split('.');
      expect((next as unknown as Record<string, Record<string, unknown>>)[s][k]).toEqual(value);
      expect(next.model).toBe(base.model);
    }
    expect(base.sampling.oneIn).toBe(10);
    expect(applyRuntimeChange(applyRuntimeChange(base, 'recalibration.cron', '0 4 * * *'), 'recalibration.cron', null).recalibration.cron).toBeNull();
  });

  it('refuses keys that need a restart', () => {
    const e = configError(() => applyRuntimeChange(base, 'http.port', 1));
    expect(e.key).toBe('http.port');
    expect(e.message).toContain('sampling.oneIn');
    expect(configError(() => applyRuntimeChange(base, 'sampling.maxRows', 1)).message).toContain('cannot be changed at run time');
  });

  it('validates the value with the same messages as the file', () => {
    expect(configError(() => applyRuntimeChange(base, 'recalibration.method', 'median')).message).toBe(
      'config key recalibration.method: "median" is not allowed; expected one of "minmax", "percentile", "entropy", "mse"',
    );
    expect(configError(() => applyRuntimeChange(base, 'sampling.oneIn', 0)).key).toBe('sampling.oneIn');
    expect(configError(() => applyRuntimeChange(base, 'recalibration.cron', 'every day')).message).toContain('not a cron expression');
    expect(configError(() => applyRuntimeChange(base, 'recalibration.gateMargin', undefined)).message).toContain('required');
  });
});

describe('mqtt tuning variables', () => {
  it('apply when MQTT is on and never turn it on by themselves', () => {
    const on = loadConfig({ env: { CALIBD_MQTT_URL: 'embedded', CALIBD_MQTT_EMBEDDED_PORT: '0', CALIBD_MQTT_BACKOFF_MAX_MS: '2000', CALIBD_MQTT_SIGNING_WINDOW_SEC: '5' } });
    expect(on.mqtt).toMatchObject({ embeddedPort: 0, backoffMaxMs: 2000, signingWindowSec: 5 });
    const off = loadConfig({ env: { CALIBD_MQTT_EMBEDDED_PORT: '0' } });
    expect(off.mqtt).toBeNull();
  });
});

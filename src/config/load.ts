// Builds the daemon's config from, in rising precedence: schema defaults, one YAML or JSON
// file, CALIBD_* environment variables, then caller overrides (CLI flags). The first problem
// stops start-up with a ConfigError naming the key, the bad value and what is allowed, and
// where the value came from (file and line, or the environment variable).
//
// Relative paths are resolved against the process's working directory, not the config
// file's folder: in development the daemon runs from the repository root with the bundled
// config/default.yaml, and under systemd every path is absolute anyway.

import { readFileSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { SECRET_KEYS, calibdConfigSchema, type CalibdConfig, type CalibdConfigInput } from './schema.js';
import { redactSecrets, touchesSecret } from './secrets.js';

export interface LoadConfigOptions {
  /** A .yaml, .yml or .json file; without one, defaults plus environment and overrides. */
  file?: string;
  /** Defaults to process.env. Empty values count as unset. */
  env?: Record<string, string | undefined>;
  /** Highest precedence, e.g. from command-line flags; merged key by key. */
  overrides?: CalibdConfigInput | Record<string, unknown>;
}

interface EnvBinding {
  name: string;
  key: string[];
  kind: 'string' | 'int';
}

/** Environment variables the loader reads, and the key each one sets. */
export const envBindings: readonly EnvBinding[] = [
  { name: 'CALIBD_MODEL', key: ['model'], kind: 'string' },
  { name: 'CALIBD_MODEL_NAME', key: ['modelName'], kind: 'string' },
  { name: 'CALIBD_DEVICE_ID', key: ['deviceId'], kind: 'string' },
  { name: 'CALIBD_STATE_DIR', key: ['stateDir'], kind: 'string' },
  { name: 'CALIBD_HTTP_HOST', key: ['http', 'host'], kind: 'string' },
  { name: 'CALIBD_HTTP_PORT', key: ['http', 'port'], kind: 'int' },
  // A secret is better kept out of a world-readable config file.
  { name: 'CALIBD_HTTP_TOKEN', key: ['http', 'token'], kind: 'string' },
  { name: 'CALIBD_THREADS', key: ['threads'], kind: 'int' },
  // 'off' turns MQTT off, whatever the file says.
  { name: 'CALIBD_MQTT_URL', key: ['mqtt', 'url'], kind: 'string' },
  { name: 'CALIBD_MQTT_EMBEDDED_PORT', key: ['mqtt', 'embeddedPort'], kind: 'int' },
  { name: 'CALIBD_MQTT_SIGNING_KEY_FILE', key: ['mqtt', 'signingKeyFile'], kind: 'string' },
  { name: 'CALIBD_MQTT_SIGNING_WINDOW_SEC', key: ['mqtt', 'signingWindowSec'], kind: 'int' },
  { name: 'CALIBD_MQTT_BACKOFF_MAX_MS', key: ['mqtt', 'backoffMaxMs'], kind: 'int' },
  { name: 'CALIBD_LOG_LEVEL', key: ['log', 'level'], kind: 'string' },
  { name: 'CALIBD_PREPROCESS', key: ['preprocess'], kind: 'string' },
];

const PATH_KEYS: readonly string[][] = [
  ['model'],
  ['stateDir'],
  ['mqtt', 'passwordFile'],
  ['mqtt', 'signingKeyFile'],
  ['mqtt', 'ca'],
  ['mqtt', 'cert'],
  ['mqtt', 'key'],
];

export function loadConfig(opts: LoadConfigOptions = {}): CalibdConfig {
  const source = opts.file !== undefined ? readConfigFile(opts.file) : undefined;
  const merged: Record<string, unknown> = source ? structuredClone(source.data) : {};
  turnMqttOff(merged);
  const fromEnv = applyEnv(merged, opts.env ?? process.env);
  if (opts.overrides) deepMerge(merged, opts.overrides as Record<string, unknown>);

  const result = calibdConfigSchema.safeParse(merged);
  if (!result.success) throw issueToError(result.error.issues[0], result.error.issues.length, merged, source, fromEnv);
  return resolvePaths(result.data);
}

/** Validates an already-built config object (no file, no environment). */
export function parseConfig(input: unknown): CalibdConfig {
  const result = calibdConfigSchema.safeParse(input);
  if (!result.success) throw issueToError(result.error.issues[0], result.error.issues.length, input, undefined, new Map());
  return result.data;
}

function resolvePaths(config: CalibdConfig): CalibdConfig {
  const out = structuredClone(config) as Record<string, unknown>;
  for (const key of PATH_KEYS) {
    const v = getAt(out, key);
    if (typeof v === 'string' && !isAbsolute(v)) setAt(out, key, resolve(v));
  }
  return out as CalibdConfig;
}

// ---------------------------------------------------------------------------------------
// File

interface ConfigSource {
  file: string;
  text: string;
  data: Record<string, unknown>;
  /** Built on demand: only error messages need line numbers. */
  doc?: { doc: Document; lines: LineCounter };
}

function readConfigFile(file: string): ConfigSource {
  const ext = extname(file).toLowerCase();
  if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') {
    throw new ConfigError(`${file}: unsupported config file type "${ext || '(none)'}"`, {
      file,
      value: file,
      hint: 'use a .yaml, .yml or .json file',
    });
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${code ?? String(err)})`;
    throw new ConfigError(`config file ${file} ${why}`, {
      file,
      value: file,
      cause: err,
      hint: 'pass an existing file with --config, or start from config/default.yaml',
    });
  }
  const data = ext === '.json' ? parseJson(file, text) : parseYaml(file, text);
  if (data === null || data === undefined) return { file, text, data: {} };
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${file}: the config must be a mapping of keys to values, not ${describeType(data)}`, {
      file,
      line: 1,
      value: data,
    });
  }
  return { file, text, data: data as Record<string, unknown> };
}

function parseYaml(file: string, text: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const line = lines.linePos(err.pos[0]).line;
    const firstLine = err.message.split('\n')[0];
    throw new ConfigError(`${file}:${line}: YAML syntax error: ${firstLine}`, {
      file,
      line,
      cause: err,
      hint: "quote values that start with '*', '&', '!' or contain ': ' (cron expressions, for one)",
    });
  }
  try {
    // Resolving aliases happens here, not while parsing: '*a' without an '&a' anchor throws.
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(`${file}: YAML error: ${(err as Error).message.split('\n')[0]}`, {
      file,
      cause: err,
      hint: "quote values that start with '*', '&' or '!' (YAML reads them as aliases, anchors and tags)",
    });
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const pos = /position (\d+)/.exec(String((err as Error).message));
    const line = pos ? lineAt(text, Number(pos[1])) : undefined;
    throw new ConfigError(`${file}${line ? `:${line}` : ''}: JSON syntax error: ${(err as Error).message}`, {
      file,
      line,
      cause: err,
    });
  }
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The 1-based line where `path` (or, for an unknown key, that key) sits in the file. */
function locate(source: ConfigSource, path: PropertyKey[], unknownKey?: string): number | undefined {
  if (!source.doc) {
    const lines = new LineCounter();
    // JSON is YAML too, so one locator serves both formats.
    source.doc = { doc: parseDocument(source.text, { lineCounter: lines, uniqueKeys: false }), lines };
  }
  const { doc, lines } = source.doc;
  // Walk up until a node exists: a missing key is best reported at its parent.
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth) as (string | number)[];
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
    if (!node || typeof node !== 'object') continue;
    if (unknownKey !== undefined && depth === path.length && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === unknownKey);
      const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (range) return lines.linePos(range[0]).line;
    }
    const range = (node as { range?: [number, number, number] }).range;
    if (range) return lines.linePos(range[0]).line;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Environment and merging

/**
 * `mqtt: off` or `mqtt: { url: off }` in a file means what CALIBD_MQTT_URL=off means, as the
 * README says: no MQTT. The environment may still turn it on again.
 */
function turnMqttOff(target: Record<string, unknown>): void {
  const m = target.mqtt;
  const isOff = (v: unknown) => typeof v === 'string' && v.trim().toLowerCase() === 'off';
  if (isOff(m) || (isPlainObject(m) && isOff(m.url))) target.mqtt = null;
}

function applyEnv(target: Record<string, unknown>, env: Record<string, string | undefined>): Map<string, string> {
  const applied = new Map<string, string>();
  for (const b of envBindings) {
    const raw = env[b.name];
    if (raw === undefined || raw.trim() === '') continue;
    const text = raw.trim();
    if (b.name === 'CALIBD_MQTT_URL' && text.toLowerCase() === 'off') {
      target.mqtt = null;
      applied.set('mqtt', b.name);
      continue;
    }
    let value: string | number = text;
    if (b.kind === 'int') {
      if (!/^[+-]?\d+$/.test(text)) {
        throw new ConfigError(`${b.name}=${JSON.stringify(raw)} is not a whole number (it sets ${b.key.join('.')})`, {
          key: b.key.join('.'),
          value: raw,
          hint: `set ${b.name} to an integer or unset it`,
        });
      }
      value = Number(text);
    }
    if (b.key.length > 1 && (target[b.key[0]] === null || typeof target[b.key[0]] !== 'object')) {
      // Only CALIBD_MQTT_URL turns MQTT on; the other mqtt variables tune it when it is on.
      if (b.key[0] === 'mqtt' && b.name !== 'CALIBD_MQTT_URL') continue;
      target[b.key[0]] = {};
    }
    setAt(target, b.key, value);
    applied.set(b.key.join('.'), b.name);
  }
  return applied;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (isPlainObject(v) && isPlainObject(target[k])) deepMerge(target[k] as Record<string, unknown>, v);
    else target[k] = isPlainObject(v) || Array.isArray(v) ? structuredClone(v) : v;
  }
}

function getAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function setAt(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    if (!isPlainObject(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

// ---------------------------------------------------------------------------------------
// Error messages

/** Turns the first schema issue into one message: where, which key, what value, what is allowed. */
export function issueToError(
  issue: z.core.$ZodIssue,
  issueCount: number,
  input: unknown,
  source: ConfigSource | undefined,
  fromEnv: Map<string, string>,
): ConfigError {
  const path = issue.path.slice();
  let unknownKey: string | undefined;
  if (issue.code === 'unrecognized_keys') unknownKey = issue.keys[0];
  const keyPath = [...path, ...(unknownKey !== undefined ? [unknownKey] : [])].map(String).join('.');
  const value = unknownKey !== undefined ? undefined : 'input' in issue && issue.input !== undefined ? issue.input : getAt(input, path);

  let problem: string;
  let hint = 'see config/default.yaml for every key with its default';
  if (issue.code === 'unrecognized_keys') {
    const allowed = knownKeys(path);
    const guess = allowed ? closest(unknownKey!, allowed) : undefined;
    problem = `unknown key${guess ? ` (did you mean "${guess}"?)` : ''}`;
    if (allowed) hint = `allowed keys${path.length ? ` under ${path.join('.')}` : ''}: ${allowed.join(', ')}`;
    if (issue.keys.length > 1) problem += `; also unknown here: ${issue.keys.slice(1).join(', ')}`;
  } else {
    const shown = showValue(keyPath, value);
    problem = shown ? `${shown} ${constraint(issue, value)}` : constraint(issue, value);
  }
  const extra = issueCount > 1 ? ` (${issueCount - 1} more problem${issueCount > 2 ? 's' : ''} after this one)` : '';

  const envVar = fromEnv.get(keyPath) ?? fromEnv.get(String(path[0]));
  let where = '';
  let line: number | undefined;
  if (!envVar && source) {
    line = locate(source, path, unknownKey);
    where = `${source.file}${line ? `:${line}` : ''}: `;
  }
  const keyLabel = keyPath || '(top level)';
  const fromLabel = envVar ? ` (from ${envVar})` : '';
  return new ConfigError(`${where}config key ${keyLabel}${fromLabel}: ${problem}${extra}`, {
    key: keyPath,
    file: envVar ? undefined : source?.file,
    line,
    value: SECRET_KEYS.includes(keyPath) ? undefined : redactUnder(keyPath, value),
    hint,
  });
}

function constraint(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_value':
      return `is not allowed; expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_type':
      if (value === undefined) return `is required; expected ${article(issue.expected)}`;
      return `is ${describeType(value)}; expected ${article(issue.expected)}`;
    case 'too_small':
      if (issue.origin === 'string') return issue.minimum === 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters`;
      return `is too small; must be ${issue.inclusive === false ? '>' : '≥'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      return `is too big; must be ${issue.inclusive === false ? '<' : '≤'} ${issue.maximum}`;
    case 'invalid_format':
    case 'custom':
      return issue.message;
    default:
      return `is invalid: ${issue.message}`;
  }
}

function showValue(keyPath: string, value: unknown): string {
  if (SECRET_KEYS.includes(keyPath) && value !== undefined) return '(hidden value)';
  if (value === undefined) return '';
  const s = JSON.stringify(redactUnder(keyPath, value)) ?? String(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `value` of the section `keyPath` with the secrets inside it hidden (a strict-object error shows the section). */
function redactUnder(keyPath: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || !touchesSecret(keyPath, SECRET_KEYS)) return value;
  const inside = SECRET_KEYS.filter((s) => s.startsWith(`${keyPath}.`)).map((s) => s.slice(keyPath.length + 1));
  return redactSecrets(value, inside);
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number' && !Number.isInteger(v)) return 'a fractional number';
  return `a ${typeof v}`;
}

function article(expected: string): string {
  if (expected === 'int') return 'an integer';
  if (expected === 'object') return 'a mapping';
  if (expected === 'array') return 'a list';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/** The keys the schema accepts for the object at `path`, for "allowed keys" hints. */
function knownKeys(path: PropertyKey[]): string[] | undefined {
  let schema: unknown = calibdConfigSchema;
  for (let i = 0; ; i++) {
    schema = unwrap(schema);
    if (!(schema instanceof z.ZodObject)) return undefined;
    if (i === path.length) return Object.keys(schema.shape);
    schema = (schema.shape as Record<string, unknown>)[String(path[i])];
  }
}

function unwrap(schema: unknown): unknown {
  for (let s = schema, guard = 0; guard < 20; guard++) {
    const def = (s as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
    if (!def) return s;
    if ('innerType' in def) s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else return s;
  }
  return schema;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return bestDist <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

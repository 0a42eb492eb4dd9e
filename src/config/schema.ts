// The daemon's configuration as a zod schema: every key, its default and its constraint in
// one place. Objects are strict so a misspelt key is an error instead of a silently ignored
// setting. Defaults here are the ones a config file that omits a key gets; the bundled
// config/default.yaml spells the same values out with comments.

import { ACTIVATION_TYPES } from '../quant/activation-type.js';
import { hostname } from 'node:os';
import { basename, extname } from 'node:path';
import { z } from 'zod';
import { cronProblem } from './cron.js';
import { secret, secretPaths, redactSecrets } from './secrets.js';
import { parseMetric } from '../calibration/metrics.js';
import { RANGE_METHODS } from '../calibration/methods.js';
import { BIAS_CORRECTIONS } from '../quant/bias-correction.js';
import { EQUALIZATIONS } from '../quant/equalize.js';
import { PRESETS, preprocessSchema } from '../images/spec.js';

const MiB = 1024 * 1024;

/** Keeps a host name usable as an MQTT topic level and a file name. */
export function sanitizeDeviceId(raw: string): string {
  const id = raw.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return id.length > 0 ? id : 'calibd';
}

const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

const nonEmpty = z.string().min(1);

export const httpSchema = z.strictObject({
  host: nonEmpty.default('127.0.0.1'),
  // 0 lets the OS pick a free port (tests, ad-hoc runs).
  port: z.int().min(0).max(65535).default(8080),
  token: secret(nonEmpty).optional(),
  maxBodyBytes: z.int().min(1024).default(8 * MiB),
  // Slow clients must not hold connections on a small device: a request (headers and body)
  // still arriving after requestTimeoutMs is answered 408 and its connection closed. 30 s
  // lets a full 8 MiB body through at about 2.2 Mbit/s.
  requestTimeoutMs: z.int().min(1000).default(30_000),
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: z.int().min(100).default(5_000),
  /** Most open connections; further ones are closed as they arrive. */
  maxConnections: z.int().min(1).default(64),
});

export const samplingSchema = z.strictObject({
  oneIn: z.int().min(1).default(10),
  maxRows: z.int().min(1).default(5000),
  maxBytes: z.int().min(64 * 1024).default(256 * MiB),
  maxAgeHours: z.number().positive().default(168),
});

const cronSchema = z
  .string()
  .superRefine((expr, ctx) => {
    const problem = cronProblem(expr);
    if (problem) ctx.addIssue({ code: 'custom', message: `is not a cron expression: ${problem}` });
  })
  .nullable();

export const recalibrationSchema = z.strictObject({
  everyInferences: z.int().min(0).default(2000),
  cron: cronSchema.default(null),
  /** Any method that measures samples (data-free has none to measure in the daemon). */
  method: z.enum(RANGE_METHODS).default('mse'),
  perChannel: z.boolean().default(true),
  /** Integer type of activations: auto picks int8 on arm64, uint8 elsewhere (quant/activation-type.ts). */
  activationType: z.enum(ACTIVATION_TYPES).default('auto'),
  /** 'analytical' from the tap's channel means; 'empirical' is offline only (calibd calibrate). */
  biasCorrection: z
    .enum(BIAS_CORRECTIONS)
    .refine((b) => b !== 'empirical', {
      message: "is not available in the daemon: 'empirical' needs a pass over samples per layer at build time; use none or analytical here, or `calibd calibrate --bias-correction empirical` offline",
    })
    .default('none'),
  /** Cross-layer equalization; 'activations' measures channel ranges first, so it is offline only. */
  equalization: z
    .enum(EQUALIZATIONS)
    .refine((e) => e !== 'activations', {
      message: "is not available in the daemon: 'activations' measures channel ranges on samples before calibrating; use none or weights here, or `calibd calibrate --equalize activations` offline",
    })
    .default('none'),
  /** Activation memory a calibration may hold at once, MB; null: an eighth of RAM, at most 512. */
  maxMemoryMB: z.int().min(16).nullable().default(null),
  minSamples: z.int().min(1).default(100),
  validationSlice: z.int().min(1).default(200),
  gateMargin: z.number().min(0).max(100).default(0),
  driftThreshold: z.number().positive().default(0.2),
  forgetting: z.number().gt(0).max(1).default(0.98),
  auto: z.boolean().default(false),
});

/** How candidates are judged against FP32: the task metric and the floor with nothing to beat. */
export const validationSchema = z.strictObject({
  /** top1 | top1-steps | sqnr | mask-iou:T; null: inferred from the model's output. */
  metric: z
    .string()
    .superRefine((m, ctx) => {
      try {
        parseMetric(m);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be top1, top1-steps, sqnr or mask-iou:T (${(err as Error).message})` });
      }
    })
    .nullable()
    .default(null),
  /** Least metric value with nothing to beat; null: the metric's default (METRIC_BOUNDS). */
  floor: z.number().nullable().default(null),
});

/** What the state folder keeps of the calibration history. */
export const retentionSchema = z.strictObject({
  /** Accepted (or rolled-back) versions kept with their model files, newest first, besides the active one. */
  keepVersions: z.int().min(1).default(10),
});

const inputRangeSchema = z
  .strictObject({
    min: z.number().default(0),
    max: z.number().default(1),
  })
  .superRefine((r, ctx) => {
    if (r.min >= r.max) {
      ctx.addIssue({ code: 'custom', path: ['max'], input: r.max, message: `must be above inputRange.min (${r.min})` });
    }
  });

const mqttUrl = z
  .string()
  .refine((u) => u === 'embedded' || /^(mqtts?|wss?):\/\/[^\s/]+/.test(u), {
    message: "must be 'embedded' or a broker URL starting with mqtt://, mqtts://, ws:// or wss://",
  });

// A topic level prefix: no wildcards, no empty levels, no leading or trailing '/'.
const baseTopic = z
  .string()
  .regex(/^[^/#+\s]+(\/[^/#+\s]+)*$/, { message: "must be topic levels separated by '/', without '+', '#' or spaces" });

export const mqttSchema = z
  .strictObject({
    url: mqttUrl.default('embedded'),
    baseTopic: baseTopic.default('calibd'),
    protocolVersion: z.literal([5, 4]).default(5),
    username: nonEmpty.optional(),
    passwordFile: nonEmpty.optional(),
    ca: nonEmpty.optional(),
    cert: nonEmpty.optional(),
    key: nonEmpty.optional(),
    keepalive: z.int().min(0).max(65535).default(30),
    metricsIntervalSec: z.int().min(1).default(30),
    queueMax: z.int().min(0).default(1000),
    embeddedPort: z.int().min(0).max(65535).default(1883),
    signingKeyFile: nonEmpty.optional(),
    signingWindowSec: z.int().min(1).max(3600).default(30),
    backoffMaxMs: z.int().min(100).max(3_600_000).default(30_000),
  })
  .superRefine((m, ctx) => {
    // A client certificate without its key (or the reverse) fails only at connect time.
    if (m.cert !== undefined && m.key === undefined) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'is required when mqtt.cert is set' });
    } else if (m.key !== undefined && m.cert === undefined) {
      ctx.addIssue({ code: 'custom', path: ['cert'], message: 'is required when mqtt.key is set' });
    }
  });

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const logSchema = z.strictObject({
  level: z.enum(logLevels).default('info'),
});

export const FIRST_BOOT_CHOICES = ['datafree', 'fp32', 'fleet'] as const;

export const calibdConfigSchema = z
  .strictObject({
    model: nonEmpty
      .refine((p) => extname(p).toLowerCase() === '.onnx', { message: 'must be a path to an .onnx file' })
      .default('models/mnist-cnn.onnx'),
    modelName: nonEmpty.optional(),
    deviceId: z
      .string()
      .regex(DEVICE_ID, { message: "must be 1-64 characters from A-Z, a-z, 0-9, '_' and '-'" })
      .default(() => sanitizeDeviceId(hostname())),
    http: httpSchema.prefault({}),
    stateDir: nonEmpty.default('./var'),
    threads: z.int().min(1).max(256).default(1),
    sampling: samplingSchema.prefault({}),
    recalibration: recalibrationSchema.prefault({}),
    validation: validationSchema.prefault({}),
    retention: retentionSchema.prefault({}),
    /** The fleet group this device belongs to (`calibd fleet calibrate --group`); null: none. */
    group: z.string().regex(DEVICE_ID, { message: "must be 1-64 characters from A-Z, a-z, 0-9, '_' and '-'" }).nullable().default(null),
    /**
     * What the first start serves: a data-free calibration, FP32, or the fleet calibration of
     * this model retained on the broker (falling back to data-free when there is none).
     */
    firstBoot: z.enum(FIRST_BOOT_CHOICES).default('datafree'),
    inputRange: inputRangeSchema.prefault({}),
    /** Full shapes (batch axis first) for inputs with free dimensions, for data-free probes. */
    inputShapes: z.record(z.string(), z.array(z.int().positive()).min(1)).nullable().default(null),
    /**
     * How an encoded image sent as a BYTES input becomes the model's tensor: a preset name or
     * a spec object (src/images/spec.ts); null: images are refused, tensors only.
     */
    preprocess: z
      .union([
        z.string().refine((name) => name in PRESETS, { message: `must be a preset (${Object.keys(PRESETS).join(', ')}) or a spec object` }),
        preprocessSchema,
      ])
      .transform((p) => (typeof p === 'string' ? preprocessSchema.parse(PRESETS[p]) : p))
      .nullable()
      .default(null),
    // Off unless configured: a config that never mentions MQTT should not start a broker.
    mqtt: mqttSchema.nullable().default(null),
    log: logSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    // A buffer that can never hold minSamples rows would never recalibrate.
    if (c.recalibration.minSamples > c.sampling.maxRows) {
      ctx.addIssue({
        code: 'custom',
        path: ['recalibration', 'minSamples'],
        input: c.recalibration.minSamples,
        message: `must not exceed sampling.maxRows (${c.sampling.maxRows})`,
      });
    }
  })
  .transform((c) => ({ ...c, modelName: c.modelName ?? basename(c.model, extname(c.model)) }));

export type CalibdConfig = z.output<typeof calibdConfigSchema>;
export type HttpConfig = z.output<typeof httpSchema>;

/** Dotted paths of every secret key (e.g. 'http.token'), read off the schema once. */
export const SECRET_KEYS: readonly string[] = secretPaths(calibdConfigSchema);

/** The config with every secret that is set shown as '***': the only form that leaves the process. */
export function redactedConfig(config: CalibdConfig): CalibdConfig {
  return redactSecrets(config, SECRET_KEYS);
}
/** What a file, the environment or a caller may supply: every key optional. */
export type CalibdConfigInput = z.input<typeof calibdConfigSchema>;
export type LogLevel = (typeof logLevels)[number];

// The work behind each CLI subcommand.

import { existsSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import { OptionError, DataError } from '../common/index.js';
import { calibrate, compareModels, type CalibrationMethod } from '../calibration/index.js';
import { readModel, writeModel } from '../onnx/index.js';
import { readProfile, dequantizedName } from '../quant/index.js';
import { optimizeBasic } from '../runtime/index.js';
import { npySource, readLabels } from './data.js';
import { formatInspect, formatEval } from './format.js';

interface CalibrateArgs {
  model: string;
  data: string[];
  method: CalibrationMethod;
  perChannel?: boolean;
  perTensor?: boolean;
  samples?: number;
  exclude?: string[];
  symmetricActivations?: boolean;
  reduceRange?: boolean;
  percentile?: number;
  bins?: number;
  inputRange?: string;
  batchSize?: number;
  threads?: number;
  out: string;
}

export async function calibrateCommand(a: CalibrateArgs): Promise<void> {
  if (a.perChannel && a.perTensor) {
    throw new OptionError('--per-channel and --per-tensor exclude each other', { hint: 'pass one of them' });
  }
  const model = readModel(a.model);
  if (a.method !== 'datafree' && a.data.length === 0) {
    throw new OptionError(`--method ${a.method} needs --data`, { hint: 'pass --data DIR, or use --method datafree' });
  }
  const source = a.method === 'datafree' ? null : npySource(model, a.data, a.samples ?? Infinity);
  const bar = process.stderr.isTTY ? new SingleBar({ format: 'calibrating [{bar}] {value}/{total} samples', clearOnComplete: true }, Presets.shades_classic) : null;
  const started = Date.now();
  bar?.start(source?.count ?? 64, 0);
  try {
    const result = await calibrate(model, source, {
      method: a.method,
      perChannel: !a.perTensor,
      exclude: a.exclude,
      symmetricActivations: a.symmetricActivations,
      reduceRange: a.reduceRange,
      percentile: a.percentile,
      bins: a.bins,
      inputRange: a.inputRange ? parseRange(a.inputRange) : undefined,
      batchSize: a.batchSize,
      threads: a.threads,
      onProgress: (done) => bar?.update(done),
    });
    bar?.stop();
    writeModel(result.model, a.out);
    const p = result.profile;
    process.stdout.write(
      `wrote ${a.out}: ${p.method}, ${p.sampleCount} samples, ${p.quantizedNodes} nodes in INT8, ` +
        `${Object.keys(p.tensors).length} activation tensors, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  } finally {
    bar?.stop();
  }
}

function parseRange(s: string): { min: number; max: number } {
  const [lo, hi] = s.split(',').map(Number);
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo >= hi) {
    throw new OptionError(`--input-range '${s}' is not MIN,MAX`, { value: s, hint: 'e.g. --input-range 0,1' });
  }
  return { min: lo, max: hi };
}

interface EvalArgs {
  fp32: string;
  int8: string;
  data: string[];
  labels?: string;
  samples?: number;
  threads?: number;
  json?: boolean;
}

export async function evalCommand(a: EvalArgs): Promise<void> {
  if (a.data.length === 0) throw new OptionError('eval needs --data', { hint: 'pass --data DIR or FILE.npy' });
  for (const f of [a.fp32, a.int8]) if (!existsSync(f)) throw new DataError(`model ${f} does not exist`, { value: f, hint: 'check the path' });
  const fp32 = readModel(a.fp32);
  const int8 = readModel(a.int8);
  const profile = readProfile(int8, a.int8);
  const source = npySource(fp32, a.data, a.samples ?? Infinity);
  const labels = a.labels ? readLabels(a.labels) : undefined;
  // The INT8 graph was built from the optimised FP32 graph, so compare tensors there.
  const reference = profile ? await optimizeBasic(fp32, a.fp32) : fp32;
  const pairs = new Map(Object.keys(profile?.tensors ?? {}).map((t) => [t, dequantizedName(t)]));
  const result = await compareModels(reference, int8, source, {
    labels,
    perTensor: pairs.size > 0,
    int8Tensors: pairs,
    threads: a.threads,
  });
  process.stdout.write(a.json ? JSON.stringify(result, null, 2) + '\n' : formatEval(result));
}

export async function inspectCommand(path: string, o: { json?: boolean }): Promise<void> {
  const model = readModel(path);
  const profile = readProfile(model, path);
  if (!profile) {
    throw new DataError(`${path} holds no calibd calibration`, { value: path, hint: 'calibrate it with `calibd calibrate`' });
  }
  process.stdout.write(o.json ? JSON.stringify(profile, null, 2) + '\n' : formatInspect(path, profile));
}

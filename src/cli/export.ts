// `calibd export`: the calibration stored in an INT8 model, written in another tool's
// format. One format so far: TensorRT's calibration cache (quant/tensorrt-cache.ts), which
// ONNX Runtime's TensorRT execution provider applies to the FP32 model it is given.

import { DataError, writeFileAtomic } from '../common/index.js';
import { readModel, serializeModel, type ModelProto } from '../onnx/index.js';
import { readProfile, sha256, tensorrtCalibrationCache, type ExportFormat } from '../quant/index.js';
import { checkOutFolder } from './commands.js';
import { quantizedNodes } from './quantized.js';


interface ExportArgs {
  format: ExportFormat;
  out: string;
  trtVersion?: number;
  fp32?: string;
}

/** Names listed in a report line before "…". */
const LISTED = 5;

export async function exportCommand(path: string, a: ExportArgs): Promise<void> {
  checkOutFolder(a.out);
  const model = readModel(path);
  const profile = readProfile(model, path);
  if (!profile) {
    throw new DataError(`${path} holds no calibd calibration, so it has no ranges to export`, {
      value: path,
      hint: 'export an INT8 model written by `calibd calibrate`',
    });
  }
  const cache = tensorrtCalibrationCache(profile, { trtVersion: a.trtVersion });
  // Read before anything is written, so a wrong --fp32 leaves no file behind.
  const fp32 = a.fp32 === undefined ? undefined : fp32Model(a.fp32);
  writeFileAtomic(a.out, cache.text);

  const lines = [`wrote ${a.out}: ${cache.text.slice(0, cache.text.indexOf('\n'))}, ${cache.entries.length} tensors`];
  // The profile names tensors of the graph calibd measured (the FP32 model after ORT's
  // 'basic' pass and calibd's exact folds); the execution provider looks names up in the
  // network it builds from the FP32 model it is given, and skips the rest.
  lines.push("  names are those of calibd's prepared graph (ORT's 'basic' pass and exact folds); the TensorRT EP matches them against the FP32 model it is given");
  if (fp32) {
    const known = graphTensors(fp32);
    const missing = cache.entries.map((e) => e.tensor).filter((t) => !known.has(t));
    lines.push(`  ${cache.entries.length - missing.length} of ${cache.entries.length} exist in ${a.fp32}; ${missing.length} do not${missing.length ? ` (TensorRT gets no range for them): ${listed(missing)}` : ''}`);
    if (sha256(serializeModel(fp32)) !== profile.sourceModelSha256) {
      lines.push(`  note: ${a.fp32} is not the model this INT8 model was calibrated from (its sha256 differs from the profile's ${profile.sourceModelSha256.slice(0, 12)}…)`);
    }
  } else {
    lines.push('  pass --fp32 FP32.onnx to count how many exist in the original model');
  }
  if (cache.rescaled.length) {
    lines.push(`  left out ${cache.rescaled.length} tensors cross-layer equalization rescaled (their ranges do not hold in the FP32 model; calibrate with --equalize none to keep them): ${listed(cache.rescaled)}`);
  }
  if (profile.options.target === 'tensorrt') {
    lines.push('  this model is a TensorRT Q/DQ model too: TensorRT builds it as it is (explicit quantization) and ignores a cache for it');
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function fp32Model(path: string): ModelProto {
  const model = readModel(path);
  if (quantizedNodes(model).length > 0) {
    throw new DataError(`--fp32 ${path} is already quantized`, { value: path, hint: 'pass the FP32 model the TensorRT EP will be given' });
  }
  return model;
}

/** Tensors TensorRT's network can name: the graph's inputs and every node's outputs. */
function graphTensors(model: ModelProto): Set<string> {
  const names = new Set(model.graph!.input.map((v) => v.name));
  for (const n of model.graph!.node) for (const o of n.output) if (o) names.add(o);
  return names;
}

function listed(names: string[]): string {
  return names.slice(0, LISTED).join(', ') + (names.length > LISTED ? `, … (${names.length - LISTED} more)` : '');
}

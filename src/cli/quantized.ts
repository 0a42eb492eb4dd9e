// Models that are already quantized. Quantizing one again would stack a second set of
// scales on the first (and ONNX Runtime then refuses the duplicate node names), so calibrate
// and serve refuse it in one line, naming the FP32 model it came from when calibd made it
// and that model sits beside it or in ./models.

import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { OptionError } from '../common/index.js';
import { readModel, serializeModel, type ModelProto } from '../onnx/index.js';
import { readProfile, sha256 } from '../quant/index.js';

/** Op types that mean a model is already quantized. */
const QUANTIZED_OPS = /^(QuantizeLinear|DequantizeLinear|DynamicQuantizeLinear|QLinear.*|MatMulInteger|ConvInteger)$/;

/** Candidate FP32 sources looked at, at most; each is parsed and hashed. */
const MAX_CANDIDATES = 16;
const MAX_CANDIDATE_BYTES = 256 * 2 ** 20;

export function quantizedNodes(model: ModelProto): string[] {
  return model.graph!.node.filter((n) => QUANTIZED_OPS.test(n.opType)).map((n) => n.opType);
}

/** Throws an OptionError when `model` is quantized; `what` says what to pass instead, e.g. 'with --model'. */
export function refuseQuantized(model: ModelProto, path: string, what: string): void {
  const ops = quantizedNodes(model);
  if (ops.length === 0) return;
  const kinds = [...new Set(ops)].slice(0, 3).join('/');
  const profile = readProfile(model, path);
  let origin = '';
  if (profile) {
    const source = findSource(path, profile.sourceModelSha256);
    origin = source ? `; calibd made it from ${source}` : `; calibd made it from an FP32 model (sha256 ${profile.sourceModelSha256.slice(0, 12)}…) not found beside it`;
  }
  throw new OptionError(`${path} is already quantized (${ops.length} ${kinds} nodes)${origin}`, { value: path, hint: `pass the FP32 model it came from ${what}` });
}

/** The .onnx beside `path` or in ./models whose graph hashes to `sha`, as a path to show. */
function findSource(path: string, sha: string): string | undefined {
  const folders = [...new Set([dirname(resolve(path)), resolve('models')])];
  let looked = 0;
  for (const folder of folders) {
    let names: string[];
    try {
      names = readdirSync(folder).filter((n) => n.endsWith('.onnx')).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      const file = join(folder, name);
      if (file === resolve(path) || looked++ >= MAX_CANDIDATES) continue;
      try {
        if (statSync(file).size > MAX_CANDIDATE_BYTES) continue;
        // The profile hashes the model as calibd serialises it, not the file's bytes.
        if (sha256(serializeModel(readModel(file))) === sha) return relative(process.cwd(), file) || file;
      } catch {
        // Not a readable model: not the source.
      }
    }
  }
  return undefined;
}

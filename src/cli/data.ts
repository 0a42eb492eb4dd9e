// Sample data for the CLI: .npy files (float32; one sample per file, or a batch along
// axis 0) in a folder or given directly, checked against the model's inputs before any
// work starts. Files are streamed one at a time, so memory does not grow with N.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, readNpy } from '../common/index.js';
import type { Batch, SampleSource } from '../calibration/index.js';
import { GraphIndex, type ModelProto } from '../onnx/index.js';

export interface InputSpec {
  name: string;
  /** Per-sample dims; -1 where the model leaves a dimension free. */
  sampleDims: number[];
}

export function modelInputs(model: ModelProto): InputSpec[] {
  const index = new GraphIndex(model.graph!);
  return model.graph!.input
    .filter((i) => index.graphInputs.includes(i.name))
    .map((i) => {
      const t = i.type?.value;
      const dims = t?.case === 'tensorType' ? t.value.shape?.dim ?? [] : [];
      return {
        name: i.name,
        sampleDims: dims.slice(1).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : -1)),
      };
    });
}

function listNpy(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new DataError(`data path ${path} does not exist`, { value: path, hint: 'pass a folder of .npy files or one .npy file' });
  }
  if (st.isFile()) return [path];
  const files = readdirSync(path).filter((f) => f.endsWith('.npy')).sort().map((f) => join(path, f));
  if (files.length === 0) {
    throw new DataError(`no .npy files in ${path}`, { value: path, hint: 'put float32 .npy samples in the folder' });
  }
  return files;
}

/** Reads one file and checks dtype, shape and values; returns [N, ...sample] data. */
function loadChecked(file: string, spec: InputSpec): { data: Float32Array; dims: number[] } {
  const arr = readNpy(file);
  if (arr.dtype !== 'float32') {
    throw new DataError(`${file} holds ${arr.dtype}, input '${spec.name}' needs float32`, {
      value: file,
      hint: 'convert it, e.g. np.save(path, a.astype(np.float32))',
    });
  }
  const rank = spec.sampleDims.length;
  let dims: number[];
  if (arr.shape.length === rank) dims = [1, ...arr.shape];
  else if (arr.shape.length === rank + 1) dims = arr.shape;
  else {
    throw new DataError(`${file} has shape [${arr.shape.join(',')}], input '${spec.name}' takes [N,${spec.sampleDims.join(',')}]`, {
      value: file,
      hint: 'save one sample per file, or a batch along axis 0',
    });
  }
  spec.sampleDims.forEach((d, i) => {
    if (d !== -1 && dims[i + 1] !== d) {
      throw new DataError(`${file} has shape [${arr.shape.join(',')}], input '${spec.name}' takes [N,${spec.sampleDims.join(',')}]`, {
        value: file,
        hint: 'resize or reshape the samples to the model input',
      });
    }
  });
  const data = arr.data as Float32Array;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new DataError(`${file} holds a non-finite value (${data[i]}) at flat index ${i}`, {
        value: file,
        hint: 'remove or fix samples with NaN or Infinity',
      });
    }
  }
  return { data, dims };
}

/**
 * `specs`: 'DIR' (the model's sole input) or 'NAME=DIR' per input. Every file is read
 * and checked up front, then streamed again during the run.
 */
export function npySource(model: ModelProto, specs: string[], limit = Infinity): SampleSource {
  const inputs = modelInputs(model);
  const byName = new Map<string, string[]>();
  for (const s of specs) {
    const eq = s.indexOf('=');
    if (eq > 0 && !s.slice(0, eq).includes('/')) byName.set(s.slice(0, eq), listNpy(s.slice(eq + 1)));
    else {
      if (inputs.length !== 1) {
        throw new DataError(`the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); '${s}' names none`, {
          value: s,
          hint: 'pass --data NAME=DIR once per input',
        });
      }
      byName.set(inputs[0].name, listNpy(s));
    }
  }
  for (const input of inputs) {
    if (!byName.has(input.name)) {
      throw new DataError(`no data for input '${input.name}'`, { value: input.name, hint: `pass --data ${input.name}=DIR` });
    }
  }
  for (const name of byName.keys()) {
    if (!inputs.some((i) => i.name === name)) {
      throw new DataError(`the model has no input '${name}'`, { value: name, hint: `inputs are: ${inputs.map((i) => i.name).join(', ')}` });
    }
  }
  // Check every file now, so a bad one fails before any work is done.
  const counts = new Map<string, number[]>();
  for (const input of inputs) {
    counts.set(input.name, byName.get(input.name)!.map((f) => loadChecked(f, input).dims[0]));
  }
  const totals = inputs.map((i) => counts.get(i.name)!.reduce((a, b) => a + b, 0));
  if (new Set(totals).size > 1) {
    throw new DataError(`inputs have different sample counts (${inputs.map((i, k) => `${i.name}: ${totals[k]}`).join(', ')})`, {
      hint: 'give every input the same number of samples',
    });
  }
  const count = Math.min(totals[0], limit);
  return {
    count,
    async *batches(batchSize: number) {
      // Per input, a cursor over its files; batches are cut across file boundaries.
      const cursors = inputs.map((input) => ({ input, files: byName.get(input.name)!, file: 0, buf: null as null | { data: Float32Array; dims: number[] }, pos: 0 }));
      let produced = 0;
      while (produced < count) {
        const n = Math.min(batchSize, count - produced);
        const batch: Batch = {};
        for (const c of cursors) {
          const chunks: Float32Array[] = [];
          let dims: number[] = [];
          let got = 0;
          while (got < n) {
            if (!c.buf || c.pos >= c.buf.dims[0]) {
              c.buf = loadChecked(c.files[c.file++], c.input);
              c.pos = 0;
            }
            const per = c.buf.dims.slice(1).reduce((a, b) => a * b, 1);
            const take = Math.min(n - got, c.buf.dims[0] - c.pos);
            chunks.push(c.buf.data.subarray(c.pos * per, (c.pos + take) * per));
            dims = c.buf.dims.slice(1);
            c.pos += take;
            got += take;
          }
          const per = dims.reduce((a, b) => a * b, 1);
          const data = chunks.length === 1 ? chunks[0] : new Float32Array(n * per);
          if (chunks.length > 1) {
            let off = 0;
            for (const ch of chunks) {
              data.set(ch, off);
              off += ch.length;
            }
          }
          batch[c.input.name] = { data, dims: [n, ...dims] };
        }
        produced += n;
        yield batch;
      }
    },
  };
}

/** Integer labels from a .npy file (any integer dtype). */
export function readLabels(file: string): Int32Array {
  const arr = readNpy(file);
  if (arr.dtype === 'float32' || arr.dtype === 'float64') {
    throw new DataError(`${file} holds ${arr.dtype}; labels must be integers`, { value: file, hint: 'save labels as int64 or int32' });
  }
  const out = new Int32Array(arr.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(arr.data[i]);
  return out;
}

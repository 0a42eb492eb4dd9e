// Sample data for the CLI: .npy files (float32; one sample per file, or a batch along
// axis 0) in a folder or given directly, checked against the model's inputs before any
// work starts. Files are streamed one at a time, so memory does not grow with N.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, readNpy, readNpyHeader, readNpyRows, type NpyHeader } from '../common/index.js';
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

/** A checked sample file: its header and per-file shape [N, ...sample]. */
interface CheckedFile {
  file: string;
  header: NpyHeader;
  dims: number[];
}

/** Rows checked for finite values per read, so a large file is checked in bounded memory. */
const CHECK_WINDOW_BYTES = 16 * 2 ** 20;

/** Checks one file's dtype, shape and values, reading it in windows. */
function checkFile(file: string, spec: InputSpec): CheckedFile {
  const header = readNpyHeader(file);
  if (header.dtype !== 'float32') {
    throw new DataError(`${file} holds ${header.dtype}, input '${spec.name}' needs float32`, {
      value: file,
      hint: 'convert it, e.g. np.save(path, a.astype(np.float32))',
    });
  }
  const rank = spec.sampleDims.length;
  const shape = header.shape;
  let dims: number[];
  if (shape.length === rank) dims = [1, ...shape];
  else if (shape.length === rank + 1) dims = shape;
  else {
    throw new DataError(`${file} has shape [${shape.join(',')}], input '${spec.name}' takes [N,${spec.sampleDims.join(',')}]`, {
      value: file,
      hint: 'save one sample per file, or a batch along axis 0',
    });
  }
  spec.sampleDims.forEach((d, i) => {
    if (d !== -1 && dims[i + 1] !== d) {
      throw new DataError(`${file} has shape [${shape.join(',')}], input '${spec.name}' takes [N,${spec.sampleDims.join(',')}]`, {
        value: file,
        hint: 'resize or reshape the samples to the model input',
      });
    }
  });
  const checked = { file, header: { ...header, shape: dims }, dims };
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const window = Math.max(1, Math.floor(CHECK_WINDOW_BYTES / (4 * per)));
  for (let row = 0; row < dims[0]; row += window) {
    const n = Math.min(window, dims[0] - row);
    const data = readRows(checked, row, n);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new DataError(`${file} holds a non-finite value (${data[i]}) at flat index ${row * per + i}`, {
          value: file,
          hint: 'remove or fix samples with NaN or Infinity',
        });
      }
    }
  }
  return checked;
}

function readRows(f: CheckedFile, start: number, n: number): Float32Array {
  return readNpyRows(f.file, f.header, start, n) as Float32Array;
}

/**
 * `specs`: 'DIR' (the model's sole input) or 'NAME=DIR' per input. Every file is checked
 * up front (in windows), then streamed again a batch at a time during the run.
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
  const checked = new Map<string, CheckedFile[]>();
  for (const input of inputs) {
    checked.set(input.name, byName.get(input.name)!.map((f) => checkFile(f, input)));
  }
  const totals = inputs.map((i) => checked.get(i.name)!.reduce((a, f) => a + f.dims[0], 0));
  if (new Set(totals).size > 1) {
    throw new DataError(`inputs have different sample counts (${inputs.map((i, k) => `${i.name}: ${totals[k]}`).join(', ')})`, {
      hint: 'give every input the same number of samples',
    });
  }
  const count = Math.min(totals[0], limit);
  return {
    count,
    async *batches(batchSize: number) {
      // Per input, a cursor over its files; batches are cut across file boundaries and
      // only the rows a batch needs are read.
      const cursors = inputs.map((input) => ({ input, files: checked.get(input.name)!, file: 0, pos: 0 }));
      let produced = 0;
      while (produced < count) {
        const n = Math.min(batchSize, count - produced);
        const batch: Batch = {};
        for (const c of cursors) {
          const chunks: Float32Array[] = [];
          let dims: number[] = [];
          let got = 0;
          while (got < n) {
            if (c.pos >= c.files[c.file].dims[0]) {
              c.file++;
              c.pos = 0;
            }
            const f = c.files[c.file];
            const take = Math.min(n - got, f.dims[0] - c.pos);
            chunks.push(readRows(f, c.pos, take));
            dims = f.dims.slice(1);
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

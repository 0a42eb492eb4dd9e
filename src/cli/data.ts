// Sample data for the CLI: .npy files (float32; one sample per file, or a batch along
// axis 0), or JPEG/PNG/WebP images with a preprocessing spec, in a folder or given
// directly, checked against the model's inputs before any work starts. Files are streamed
// a batch at a time, so memory does not grow with N.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DataError, readNpy, readNpyHeader, readNpyRows, type NpyHeader } from '../common/index.js';
import type { Batch, SampleSource } from '../calibration/index.js';
import { GraphIndex, type ModelProto } from '../onnx/index.js';
import { PRESETS, imageSize, imageToTensor, isImageFile, tensorDims, type PreprocessSpec } from '../images/index.js';

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

/** The sample files of one input: .npy arrays, or encoded images for --preprocess. */
interface Listing {
  kind: 'npy' | 'image';
  files: string[];
}

/** Sample files at `path` (a folder, or one file), sorted by name: sample order is name order. */
export function listSamples(path: string): Listing {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new DataError(`data path ${path} does not exist`, { value: path, hint: 'pass a folder of .npy files or JPEG/PNG/WebP images, or one such file' });
  }
  if (st.isFile()) return { kind: isImageFile(path) ? 'image' : 'npy', files: [path] };
  const names = readdirSync(path).sort();
  const npy = names.filter((f) => f.endsWith('.npy')).map((f) => join(path, f));
  const images = names.filter(isImageFile).map((f) => join(path, f));
  if (npy.length > 0 && images.length > 0) {
    throw new DataError(`${path} holds both .npy files (${npy.length}) and images (${images.length})`, { value: path, hint: 'keep one kind of sample per folder' });
  }
  if (npy.length === 0 && images.length === 0) {
    throw new DataError(`no .npy files or images in ${path}`, { value: path, hint: 'put float32 .npy samples or JPEG/PNG/WebP images in the folder' });
  }
  return npy.length > 0 ? { kind: 'npy', files: npy } : { kind: 'image', files: images };
}

/** A checked sample file: its header and per-file shape [N, ...sample]. */
export interface CheckedFile {
  file: string;
  header: NpyHeader;
  dims: number[];
}

/** Rows checked for finite values per read, so a large file is checked in bounded memory. */
const CHECK_WINDOW_BYTES = 16 * 2 ** 20;

/** Checks one file's dtype, shape and values, reading it in windows. */
export function checkFile(file: string, spec: InputSpec): CheckedFile {
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

export function readRows(f: CheckedFile, start: number, n: number): Float32Array {
  return readNpyRows(f.file, f.header, start, n) as Float32Array;
}

/** One input's samples; each pass opens a cursor that reads them in order a batch at a time. */
interface InputReader {
  count: number;
  /** A cursor whose calls return the next `n` samples as one tensor [n, ...]. */
  open(): (n: number) => Promise<{ data: Float32Array; dims: number[] }>;
}

/**
 * `specs`: 'DIR' (the model's sole input) or 'NAME=DIR' per input. Every .npy file is
 * checked up front (in windows) and every image's header read, then samples are streamed
 * again a batch at a time during the run. Images need `preprocess`.
 */
export async function dataSource(model: ModelProto, specs: string[], opts: { limit?: number; preprocess?: PreprocessSpec } = {}): Promise<SampleSource & { files: Map<string, string[]> }> {
  const inputs = modelInputs(model);
  const byName = new Map<string, Listing>();
  for (const s of specs) {
    const eq = s.indexOf('=');
    if (eq > 0 && !s.slice(0, eq).includes('/')) byName.set(s.slice(0, eq), listSamples(s.slice(eq + 1)));
    else {
      if (inputs.length !== 1) {
        throw new DataError(`the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); '${s}' names none`, {
          value: s,
          hint: 'pass --data NAME=DIR once per input',
        });
      }
      byName.set(inputs[0].name, listSamples(s));
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
  const readers = new Map<string, InputReader>();
  for (const input of inputs) {
    const listing = byName.get(input.name)!;
    readers.set(input.name, listing.kind === 'npy' ? npyReader(listing.files.map((f) => checkFile(f, input))) : await imageReader(listing.files, input, opts.preprocess));
  }
  if (opts.preprocess && ![...byName.values()].some((l) => l.kind === 'image')) {
    throw new DataError(`--preprocess was given, but --data holds no images (${[...byName.values()][0].files[0]})`, {
      value: [...byName.values()][0].files[0],
      hint: '.npy samples are used as they are; leave --preprocess out, or point --data at the images',
    });
  }
  const totals = inputs.map((i) => readers.get(i.name)!.count);
  if (new Set(totals).size > 1) {
    throw new DataError(`inputs have different sample counts (${inputs.map((i, k) => `${i.name}: ${totals[k]}`).join(', ')})`, {
      hint: 'give every input the same number of samples',
    });
  }
  const count = Math.min(totals[0], opts.limit ?? Infinity);
  return {
    count,
    files: new Map([...byName].map(([name, l]) => [name, l.files])),
    async *batches(batchSize: number) {
      // Calibration may pass over the samples more than once: each pass has its own cursors.
      const cursors = inputs.map((input) => ({ name: input.name, next: readers.get(input.name)!.open() }));
      let produced = 0;
      while (produced < count) {
        const n = Math.min(batchSize, count - produced);
        const batch: Batch = {};
        for (const c of cursors) batch[c.name] = await c.next(n);
        produced += n;
        yield batch;
      }
    },
  };
}

/** A cursor over checked .npy files; batches are cut across file boundaries and only the rows a batch needs are read. */
function npyReader(files: CheckedFile[]): InputReader {
  return {
    count: files.reduce((a, f) => a + f.dims[0], 0),
    open: () => {
      let file = 0;
      let pos = 0;
      return async (n) => {
        const chunks: Float32Array[] = [];
        let dims: number[] = [];
        let got = 0;
        while (got < n) {
          if (pos >= files[file].dims[0]) {
            file++;
            pos = 0;
          }
          const f = files[file];
          const take = Math.min(n - got, f.dims[0] - pos);
          chunks.push(readRows(f, pos, take));
          dims = f.dims.slice(1);
          pos += take;
          got += take;
        }
        return { data: concat(chunks), dims: [n, ...dims] };
      };
    },
  };
}

/** Encoded images, one sample each, decoded and preprocessed as batches are read. */
async function imageReader(files: string[], input: InputSpec, spec: PreprocessSpec | undefined): Promise<InputReader> {
  if (!spec) {
    throw new DataError(`the data for input '${input.name}' are images (${files[0]}), which need a preprocessing spec`, {
      value: files[0],
      hint: `pass --preprocess PRESET|FILE|JSON (presets: ${Object.keys(PRESETS).join(', ')})`,
    });
  }
  const dims = tensorDims(spec);
  const fits = dims.length === input.sampleDims.length && input.sampleDims.every((d, i) => d === -1 || d === dims[i]);
  if (!fits) {
    throw new DataError(`--preprocess gives [N,${dims.join(',')}], input '${input.name}' takes [N,${input.sampleDims.join(',')}]`, {
      value: dims,
      hint: 'set size, color (gray: 1 channel) and layout to the model input',
    });
  }
  // Headers only: the pixels are decoded once, as batches are read.
  for (const f of files) await imageSize(f, f);
  return {
    count: files.length,
    open: () => {
      let pos = 0;
      return async (n) => {
        const chunks: Float32Array[] = [];
        for (const f of files.slice(pos, pos + n)) chunks.push(await imageToTensor(readFileSync(f), spec, f));
        pos += n;
        return { data: concat(chunks), dims: [n, ...dims] };
      };
    },
  };
}

function concat(chunks: Float32Array[]): Float32Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * Integer class labels, one per sample: a .npy file in sample order (any integer dtype), or
 * a labels.json mapping each sample file's name to its class (an array of classes for a
 * .npy file holding a batch). `sampleFiles` are the data files, in sample order.
 */
export function readLabels(file: string, sampleFiles: string[] = []): Int32Array {
  if (file.toLowerCase().endsWith('.json')) return jsonLabels(file, sampleFiles);
  const arr = readNpy(file);
  if (arr.dtype === 'float32' || arr.dtype === 'float64') {
    throw new DataError(`${file} holds ${arr.dtype}; labels must be integers`, { value: file, hint: 'save labels as int64 or int32' });
  }
  const out = new Int32Array(arr.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(arr.data[i]);
  return out;
}

function jsonLabels(file: string, sampleFiles: string[]): Int32Array {
  let map: unknown;
  try {
    map = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file} is not readable JSON (${(err as Error).message.split('\n')[0]})`, { value: file, hint: 'write {"name.png": 3, …}, one integer class per sample file' });
  }
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new DataError(`${file} must map file names to classes`, { value: file, hint: 'write {"name.png": 3, …}' });
  }
  const labels: number[] = [];
  for (const f of sampleFiles) {
    const v = (map as Record<string, unknown>)[basename(f)];
    const classes = Array.isArray(v) ? v : [v];
    if (v === undefined || !classes.every((c) => Number.isSafeInteger(c))) {
      throw new DataError(`${file} gives no integer class for ${basename(f)}`, { value: basename(f), hint: 'give every sample file a class (an array of classes for a batch .npy)' });
    }
    labels.push(...(classes as number[]));
  }
  return Int32Array.from(labels);
}

/** The labels.json beside the samples in `dir`, when there is one. */
export function labelsBeside(dir: string): string | undefined {
  const file = join(dir, 'labels.json');
  return existsSync(file) ? file : undefined;
}

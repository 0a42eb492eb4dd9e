// node infer.mjs MODEL.onnx INPUTS.npy OUT.npy
// Runs MODEL on each sample of INPUTS (batch 1, one ORT thread) and writes the first
// output of every sample, stacked, as float32 .npy. Plain JavaScript: it runs under the
// emulated arm64 Node, where tsx's esbuild binary (x64) cannot. It imports dist/ from the
// folder it was copied to (.cache/arm64/app) or from the repository (scripts/arm64).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';

const here = dirname(fileURLToPath(import.meta.url));
const dist = [join(here, 'dist'), join(here, '..', '..', 'dist')].find((d) => existsSync(join(d, 'common', 'index.js')));
if (!dist) throw new Error('dist/ not found: run `npm run build`');
const { readNpy, writeNpy } = await import(pathToFileURL(join(dist, 'common', 'index.js')).href);

const [model, inputs, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node infer.mjs MODEL.onnx INPUTS.npy OUT.npy');
  process.exit(2);
}
const x = readNpy(inputs);
const n = x.shape[0];
const per = x.shape.slice(1);
const size = per.reduce((a, b) => a * b, 1);
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const inName = session.inputNames[0];
const outName = session.outputNames[0];
let outDims;
let outData;
for (let i = 0; i < n; i++) {
  const t = new ort.Tensor('float32', x.data.slice(i * size, (i + 1) * size), [1, ...per]);
  const y = (await session.run({ [inName]: t }))[outName];
  if (!outData) {
    outDims = y.dims.slice(1);
    outData = new Float32Array(n * y.data.length);
  }
  outData.set(y.data, i * y.data.length);
}
await session.release();
writeNpy(out, outData, [n, ...outDims]);
console.log(`infer: ${n} samples through ${model.split('/').pop()} on ${process.arch} → ${out}`);

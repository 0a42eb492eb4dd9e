import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  ModelBuilder, readModel, writeModel, parseModel, serializeModel, getMetadata, setMetadata,
  GraphIndex, constantValues, topologicalOrder, pruneToOutputs, valueInfo, DataType, tensorToFloat32, floatTensor, onnxOpset,
} from '../../src/onnx/index.js';
import { ModelError } from '../../src/common/index.js';
import { paths } from '../helpers/paths.js';

function smallModel() {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['N', 3]);
  const w = b.initializer('w', [4, 3], [1, 2, 3, -1, -2, -3, 0.5, 0.25, 0.125, 2, 0, -2]);
  const bias = b.initializer('b', [4], [0.1, -0.1, 0, 1]);
  const g = b.op('Gemm', [x, w, bias], { transB: 1 }, 'fc');
  const r = b.op('Relu', [g], {}, 'relu');
  b.node('Identity', [r], {}, { outputs: ['y'], name: 'out' });
  b.output('y', ['N', 4]);
  return b.build();
}

async function run(bytes: Uint8Array, x: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run({ x: new ort.Tensor('float32', x, [x.length / 3, 3]) });
  await s.release();
  return out.y.data as Float32Array;
}

describe('onnx model I/O', () => {
  it('builds a model ORT runs, and a save/load round trip gives identical outputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-onnx-'));
    const model = smallModel();
    const path = join(dir, 'm.onnx');
    setMetadata(model, 'k', 'v1');
    setMetadata(model, 'k', 'v2');
    writeModel(model, path);
    const loaded = readModel(path);
    expect(getMetadata(loaded, 'k')).toBe('v2');
    expect(onnxOpset(loaded)).toBe(13);
    const x = Float32Array.from([1, 2, 3, -1, 0.5, 2]);
    const a = await run(serializeModel(model), x);
    const b = await run(serializeModel(loaded), x);
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(a[0]).toBeCloseTo(14.1, 5);
    // No temporary files are left behind by the atomic write.
    expect(readdirSync(dir)).toEqual(['m.onnx']);
  });

  it('round-trips a real exporter model (PaddleOCR classifier) with identical outputs', async () => {
    const path = paths.ocrClassifier;
    const model = readModel(path);
    const bytes = serializeModel(model);
    const s1 = await ort.InferenceSession.create(path);
    const s2 = await ort.InferenceSession.create(bytes);
    const input = s1.inputNames[0];
    const data = new Float32Array(3 * 48 * 192).map((_, i) => Math.sin(i * 0.37));
    const t = new ort.Tensor('float32', data, [1, 3, 48, 192]);
    const o1 = await s1.run({ [input]: t });
    const o2 = await s2.run({ [input]: t });
    const k = s1.outputNames[0];
    expect(Array.from(o2[k].data as Float32Array)).toEqual(Array.from(o1[k].data as Float32Array));
  });

  it('answers graph queries', () => {
    const model = smallModel();
    const idx = new GraphIndex(model.graph!);
    expect(idx.producer.get('y')?.name).toBe('out');
    expect(idx.consumersOf('x').map((n) => n.name)).toEqual(['fc']);
    expect(idx.isConstant('w')).toBe(true);
    expect(idx.isActivation('x')).toBe(true);
    expect(Array.from(constantValues(idx, 'b')!)).toEqual([0.1, -0.1, 0, 1].map((v) => Math.fround(v)));
    expect(topologicalOrder(model.graph!).map((n) => n.name)).toEqual(['fc', 'relu', 'out']);
    expect(Array.from(tensorToFloat32(floatTensor('t', [2], [1.5, -2])))).toEqual([1.5, -2]);
  });

  it('prunes a graph to what computes the asked outputs, and the cut model runs the same', async () => {
    const model = smallModel();
    model.graph!.output.push(valueInfo('fc_out', DataType.FLOAT));
    const fc = model.graph!.node.find((n) => n.name === 'fc')!;
    fc.output[0] = 'fc_out';
    model.graph!.node.find((n) => n.name === 'relu')!.input[0] = 'fc_out';
    const cut = { ...model, graph: pruneToOutputs(model.graph!, ['fc_out']) };
    expect(cut.graph!.node.map((n) => n.name)).toEqual(['fc']);
    expect(cut.graph!.output.map((o) => o.name)).toEqual(['fc_out']);
    expect(cut.graph!.initializer.map((t) => t.name).sort()).toEqual(['b', 'w']);
    const x = new ort.Tensor('float32', Float32Array.from([1, -2, 3]), [1, 3]);
    const whole = await ort.InferenceSession.create(serializeModel(model));
    const part = await ort.InferenceSession.create(serializeModel(cut));
    expect(Array.from((await part.run({ x })).fc_out.data as Float32Array)).toEqual(Array.from((await whole.run({ x })).fc_out.data as Float32Array));
  });

  it('rejects garbage and external-data models with a clear ModelError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calibd-onnx-'));
    const bad = join(dir, 'bad.onnx');
    writeFileSync(bad, 'this is not a model');
    expect(() => readModel(bad)).toThrow(ModelError);
    expect(() => readModel(join(dir, 'missing.onnx'))).toThrow(/cannot read model/);
    const model = smallModel();
    model.graph!.initializer[0].dataLocation = 1; // EXTERNAL
    expect(() => parseModel(serializeModel(model), 'ext.onnx')).toThrow(/external data/);
    expect(existsSync(bad)).toBe(true);
  });
});

// The bundled demo model: a real CNN trained on real digits, with BatchNormalization left
// unfolded for data-free calibration. Guards against a re-export that silently loses
// accuracy or changes the graph contract the rest of calibd relies on.
import { beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphIndex, onnxOpset, readModel, type ModelProto } from '../../src/onnx/index.js';
import { loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { paths } from '../helpers/paths.js';

function dims(model: ModelProto, name: string, list: 'input' | 'output'): Array<number | string> {
  const vi = model.graph!.input.concat(model.graph!.output).find((v) => v.name === name);
  expect(vi, `graph ${list} '${name}'`).toBeDefined();
  const t = vi!.type!.value;
  if (t.case !== 'tensorType') throw new Error(`${name} is not a tensor`);
  expect(t.value.elemType).toBe(1); // FLOAT
  return t.value.shape!.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : (d.value.value as string)));
}

describe('models/mnist-cnn.onnx', () => {
  let model: ModelProto;
  beforeAll(() => {
    model = readModel(paths.mnistModel);
  });

  it('has the documented inputs, outputs and opset', () => {
    expect(onnxOpset(model)).toBe(13);
    const index = new GraphIndex(model.graph!);
    expect(index.graphInputs).toEqual(['input']);
    expect(model.graph!.output.map((o) => o.name)).toEqual(['logits']);
    expect(dims(model, 'input', 'input')).toEqual(['N', 1, 28, 28]);
    expect(dims(model, 'logits', 'output')).toEqual(['N', 10]);
  });

  it('keeps both BatchNormalization nodes unfolded with their statistics as initializers', () => {
    const graph = model.graph!;
    expect(graph.node.map((n) => n.opType)).toEqual([
      'Conv', 'BatchNormalization', 'Relu', 'MaxPool',
      'Conv', 'BatchNormalization', 'Relu', 'MaxPool',
      'Flatten', 'Gemm', 'Relu', 'Gemm',
    ]);
    const index = new GraphIndex(graph);
    const bns = graph.node.filter((n) => n.opType === 'BatchNormalization');
    expect(bns).toHaveLength(2);
    for (const bn of bns) {
      expect(bn.input).toHaveLength(5);
      for (const name of bn.input.slice(1)) expect(index.isConstant(name), name).toBe(true);
      // The producer of a BN input is the Conv it would fold into.
      expect(index.producer.get(bn.input[0])?.opType).toBe('Conv');
    }
  });

  it('reaches at least 97% FP32 accuracy on the 2,000 held-out test digits in ONNX Runtime', async () => {
    const { test } = loadMnistSplit();
    const session = await ort.InferenceSession.create(paths.mnistModel);
    try {
      expect(session.inputNames).toEqual(['input']);
      expect(session.outputNames).toEqual(['logits']);
      const out = await session.run({ input: new ort.Tensor('float32', test.images, [test.count, 1, 28, 28]) });
      expect(out.logits.dims).toEqual([test.count, 10]);
      const logits = out.logits.data as Float32Array;
      let correct = 0;
      for (let i = 0; i < test.count; i++) {
        let best = 0;
        for (let k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
        if (best === test.labels[i]) correct++;
      }
      expect(correct / test.count).toBeGreaterThanOrEqual(0.97);
    } finally {
      await session.release();
    }
  });
});

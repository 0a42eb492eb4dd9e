// The lift to opset 13 (per-channel ai.onnx Q/DQ): every rewrite checked by running the
// model before and after in ONNX Runtime, and the real models lifted without a change in
// their outputs.
import { describe, expect, it } from 'vitest';
import { OptionError } from '../../src/common/index.js';
import { DataType, ModelBuilder, liftToOpset13, makeTensor, onnxOpset, readModel, type ModelProto } from '../../src/onnx/index.js';
import { prepareModel } from '../../src/calibration/index.js';
import { createSession, ort } from '../../src/runtime/index.js';
import { randomInputs } from '../helpers/models.js';
import { paths } from '../helpers/paths.js';
import { thrown } from '../helpers/thrown.js';

async function run(model: ModelProto, x: Float32Array, dims: number[]): Promise<Float32Array[]> {
  const session = await createSession(model, { threads: 1 });
  try {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, dims) });
    return session.outputNames.map((n) => out[n].data as Float32Array);
  } finally {
    await session.release();
  }
}

async function sameOutputs(model: ModelProto, dims: number[]): Promise<ModelProto> {
  const { model: lifted } = liftToOpset13(model);
  expect(onnxOpset(lifted)).toBe(13);
  const x = randomInputs(1, dims.reduce((a, b) => a * b, 1), 7, -2, 2);
  expect(await run(lifted, x, dims)).toEqual(await run(model, x, dims));
  return lifted;
}

describe('opset lift to 13', () => {
  it('moves Clip bounds and Pad settings from attributes to inputs (opset 10 → 11)', async () => {
    const b = new ModelBuilder(10);
    b.input('x', [1, 2, 3, 3]);
    const clip = b.op('Clip', ['x'], { min: { float: -0.5 }, max: { float: 1.5 } }, 'clip');
    const low = b.op('Clip', [clip], { min: { float: 0 } }, 'floor');
    const pad = b.op('Pad', [low], { pads: [0, 0, 1, 2, 0, 0, 2, 1], value: { float: 0.25 } }, 'pad');
    b.node('Identity', [pad], {}, { outputs: ['y'], name: 'out' });
    b.output('y');
    const model = b.build();
    expect(liftToOpset13(model).rewritten).toEqual({ Clip: 2, Pad: 1 });
    const lifted = await sameOutputs(model, [1, 2, 3, 3]);
    expect(lifted.graph!.node.map((n) => n.input.length)).toEqual([3, 2, 3, 1]);
  });

  it('moves axes and split to inputs, and turns Dropout into Identity (opset 11 → 13)', async () => {
    const b = new ModelBuilder(11);
    b.input('x', [1, 4, 1, 3]);
    const sq = b.op('Squeeze', ['x'], { axes: [2] }, 'squeeze');
    const un = b.op('Unsqueeze', [sq], { axes: [0] }, 'unsqueeze');
    const sum = b.op('ReduceSum', [un], { axes: [3], keepdims: 1 }, 'sum');
    const [s1, s2] = b.node('Split', [sum], { axis: 2, split: [1, 3] }, { outputs: 2, name: 'split' });
    const cat = b.op('Concat', [s2, s1], { axis: 2 }, 'concat');
    const drop = b.op('Dropout', [cat], { ratio: { float: 0.3 } }, 'drop');
    b.node('Identity', [drop], {}, { outputs: ['y'], name: 'out' });
    b.output('y');
    const model = b.build();
    expect(liftToOpset13(model).rewritten).toEqual({ Squeeze: 1, Unsqueeze: 1, ReduceSum: 1, Split: 1, Dropout: 1 });
    await sameOutputs(model, [1, 4, 1, 3]);
  });

  it('keeps Softmax over the flattened tail: Flatten → Softmax → Reshape, or one node on the last axis', async () => {
    const b = new ModelBuilder(11);
    b.input('x', [2, 3, 4]);
    const tail = b.op('Softmax', ['x'], {}, 'tail'); // axis 1: over the last two axes together
    const last = b.op('LogSoftmax', [tail], { axis: -1 }, 'last');
    b.node('Identity', [last], {}, { outputs: ['y'], name: 'out' });
    b.output('y');
    const model = b.build();
    const lifted = await sameOutputs(model, [2, 3, 4]);
    expect(lifted.graph!.node.map((n) => n.opType)).toEqual(['Shape', 'Flatten', 'Softmax', 'Reshape', 'LogSoftmax', 'Identity']);
  });

  it('refuses what it does not rewrite, by name', () => {
    const b = new ModelBuilder(10);
    b.input('x', [1, 1, 2, 2]);
    b.tensor(makeTensor('scales', DataType.FLOAT, [4], [1, 1, 2, 2]));
    b.node('Resize', ['x', 'scales'], { mode: 'nearest' }, { outputs: ['y'], name: 'up' });
    b.output('y');
    const err = thrown(OptionError, () => liftToOpset13(b.build()));
    expect(err.oneLine()).toMatch(/^opset 10 model: Resize 'up' maps coordinates differently from opset 11 on, which calibd does not rewrite for opset 13: export the model at opset 13 or later$/);
  });

  it('lifts the prepared PaddleOCR models (opsets 9, 9, 11) without changing their outputs', async () => {
    const recognizer = paths.ocrClassifier.replace('ch_ppocr_mobile_v2.0_cls_infer.onnx', 'ch_PP-OCRv4_rec_infer.onnx');
    const cases: [string, number[], Record<string, number>][] = [
      [paths.ocrDetector, [1, 3, 64, 64], {}],
      [recognizer, [1, 3, 48, 96], { Squeeze: 7, Softmax: 3 }],
      [paths.ocrClassifier, [1, 3, 48, 192], { Softmax: 1 }],
    ];
    for (const [file, dims, rewritten] of cases) {
      const prepared = await prepareModel(readModel(file));
      expect(liftToOpset13(prepared).rewritten).toEqual(rewritten);
      await sameOutputs(prepared, dims);
    }
  });
});

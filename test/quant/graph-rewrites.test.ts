// The exact graph rewrites that remove rounding points from INT8 graphs: Conv→affine
// folding, cross-layer equalization, saturation intervals and dead-end pruning. Each FP32
// rewrite is checked by running the model before and after in ONNX Runtime.
import { describe, expect, it } from 'vitest';
import { arraySource } from '../../src/calibration/index.js';
import { measureChannelRanges, convInputRanks } from '../../src/calibration/channel-ranges.js';
import { prepareModel } from '../../src/calibration/index.js';
import { GraphIndex, ModelBuilder, channelValues, floatTensor, foldAffineIntoConv, foldConvAffine, fuseHardSwish, liftToOpset10, readModel, type ModelProto } from '../../src/onnx/index.js';
import { equalizationFactors, equalizeModel, findEqualizationPairs, planQuantization, saturationInterval } from '../../src/quant/index.js';
import { createSession, ort } from '../../src/runtime/index.js';
import { randomInputs, seededRandom } from '../helpers/models.js';
import { paths } from '../helpers/paths.js';
import { digitLines, digitPages } from '../../scripts/lib/digit-pages.js';

const arr = (r: () => number, n: number, s = 1) => Array.from({ length: n }, () => (r() - 0.5) * s);

async function run(model: ModelProto, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await createSession(model, { optimization: 'disabled' });
  try {
    const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, dims) });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxRelError(a: Float32Array, b: Float32Array): number {
  let peak = 0;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    peak = Math.max(peak, Math.abs(a[i]));
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  return err / peak;
}

/** Conv → Mul(scalar) → Add([1,C,1,1]) → Sub([C,1,1]) → Div(scalar) → HardSwish as ops → Conv. */
function affineChain(): ModelProto {
  const r = seededRandom(11);
  const b = new ModelBuilder(11);
  b.input('x', ['N', 3, 8, 8]);
  const c = b.op('Conv', ['x', b.initializer('w', [4, 3, 3, 3], arr(r, 108)), b.initializer('b', [4], arr(r, 4))], { pads: [1, 1, 1, 1] }, 'conv');
  const m = b.op('Mul', [c, b.initializer('s', [1], [1.7])], {}, 'mul');
  const a = b.op('Add', [b.initializer('t', [1, 4, 1, 1], [0.5, -1, 2, 0.25]), m], {}, 'add');
  const s = b.op('Sub', [a, b.initializer('u', [4, 1, 1], [0.1, 0.2, 0.3, 0.4])], {}, 'sub');
  const d = b.op('Div', [s, b.initializer('v', [], [0.5])], {}, 'div');
  const plus = b.op('Add', [d, b.initializer('three', [], [3])], {}, 'hs_add');
  const clip = b.op('Clip', [plus, b.initializer('zero', [], [0]), b.initializer('six_c', [], [6])], {}, 'hs_clip');
  const hs = b.op('Mul', [d, clip], {}, 'hs_mul');
  const out = b.op('Div', [hs, b.initializer('six', [], [6])], {}, 'hs_div');
  b.node('Conv', [out, b.initializer('w2', [2, 4, 1, 1], arr(r, 8)), b.initializer('b2', [2], arr(r, 2))], {}, { outputs: ['y'], name: 'conv2' });
  b.output('y', ['N', 2, 8, 8]);
  return b.build();
}

describe('foldConvAffine', () => {
  it('folds Mul/Add/Sub/Div by per-channel constants into the Conv, leaving outputs unchanged', async () => {
    const model = affineChain();
    const { model: folded, folded: names } = foldConvAffine(model);
    expect(names).toEqual(['mul', 'add', 'sub', 'div']);
    expect(folded.graph!.node.map((n) => n.opType)).toEqual(['Conv', 'Add', 'Clip', 'Mul', 'Div', 'Conv']);
    const x = randomInputs(2, 3 * 64, 5, -1, 1);
    const before = await run(model, x, [2, 3, 8, 8]);
    const after = await run(folded, x, [2, 3, 8, 8]);
    expect(maxRelError(before, after)).toBeLessThan(1e-5);
  });

  it('writes HardSwish as HardSigmoid · x, and folds the affine ops before a Conv into it', async () => {
    const model = foldConvAffine(affineChain()).model;
    const { model: hs, fused } = fuseHardSwish(model);
    expect(fused).toBe(1);
    expect(hs.graph!.node.map((n) => n.opType)).toEqual(['Conv', 'HardSigmoid', 'Mul', 'Conv']);
    const x = randomInputs(2, 3 * 64, 6, -1, 1);
    expect(maxRelError(await run(model, x, [2, 3, 8, 8]), await run(hs, x, [2, 3, 8, 8]))).toBeLessThan(1e-5);
    // Learnable-affine blocks before a 1×1 Conv fold whole; before a padded Conv the scale
    // moves past the add into the filters.
    const r = seededRandom(12);
    const b = new ModelBuilder(13);
    b.input('x', ['N', 4, 6, 6]);
    const scaled = b.op('Mul', ['x', b.initializer('a', [], [1.5])], {}, 'lab_mul');
    const shifted = b.op('Add', [scaled, b.initializer('c', [1, 4, 1, 1], [0.2, -0.3, 0.1, 0.4])], {}, 'lab_add');
    const pw = b.op('Conv', [shifted, b.initializer('w1', [4, 4, 1, 1], arr(r, 16)), b.initializer('b1', [4], arr(r, 4))], {}, 'pw');
    const m2 = b.op('Mul', [pw, b.initializer('a2', [1, 4, 1, 1], [2, 0.5, -1, 3])], {}, 'lab2_mul');
    const a2 = b.op('Add', [m2, b.initializer('c2', [], [0.7])], {}, 'lab2_add');
    b.node('Conv', [a2, b.initializer('w2', [4, 1, 3, 3], arr(r, 36))], { pads: [1, 1, 1, 1], group: 4 }, { outputs: ['y'], name: 'dw' });
    b.output('y', ['N', 4, 6, 6]);
    const lab = b.build();
    const { model: folded, folded: names } = foldAffineIntoConv(lab);
    expect(names.sort()).toEqual(['lab2_mul', 'lab_add', 'lab_mul']);
    expect(folded.graph!.node.map((n) => n.opType)).toEqual(['Conv', 'Add', 'Conv']);
    const y = randomInputs(3, 4 * 36, 8, -2, 2);
    expect(maxRelError(await run(lab, y, [3, 4, 6, 6]), await run(folded, y, [3, 4, 6, 6]))).toBeLessThan(1e-5);
  });

  it('takes only constants that vary along the channel axis', () => {
    expect(channelValues(floatTensor('c', [4], [1, 2, 3, 4]), 4, 4)).toBeNull(); // broadcasts along W
    expect(channelValues(floatTensor('c', [1, 4, 1, 1], [1, 2, 3, 4]), 4, 4)).toEqual(Float64Array.from([1, 2, 3, 4]));
    expect(channelValues(floatTensor('c', [], [2]), 4, 3)).toEqual(Float64Array.from([2, 2, 2]));
    expect(channelValues(floatTensor('c', [4, 2, 1], Array(8).fill(1)), 4, 4)).toBeNull();
  });

  it('leaves the PaddleOCR detector computing the same maps', async () => {
    const fp32 = readModel(paths.ocrDetector);
    const prepared = await prepareModel(fp32);
    const page = digitPages({ count: 1, seed: 7, split: 'test', size: 128 });
    const a = await run(fp32, page.data, page.dims);
    const b = await run(prepared, page.data, page.dims);
    // Probabilities in [0, 1]: the same 1e-5 scale as ORT's own fusions give.
    expect(maxRelError(a, b)).toBeLessThan(1e-4);
    expect(prepared.graph!.node.length).toBeLessThan(fp32.graph!.node.length - 100);
    expect(prepared.graph!.node.some((n) => n.opType === 'Div')).toBe(false);
  });
});

/** Conv → Conv (1×1, linear) → Relu → depthwise Conv (3×3, padded), channels of very different widths. */
function equalizableChain(): ModelProto {
  const r = seededRandom(21);
  const b = new ModelBuilder(13);
  b.input('x', ['N', 2, 6, 6]);
  const widths = [0.05, 1, 20, 0.3, 5, 0.01];
  const w1 = arr(r, 6 * 2 * 9).map((v, i) => v * widths[Math.floor(i / 18)]);
  const c1 = b.op('Conv', ['x', b.initializer('w1', [6, 2, 3, 3], w1), b.initializer('b1', [6], widths.map((w) => w * 3))], { pads: [1, 1, 1, 1] }, 'c1');
  const c2 = b.op('Conv', [c1, b.initializer('w2', [6, 6, 1, 1], arr(r, 36)), b.initializer('b2', [6], arr(r, 6))], {}, 'c2');
  const act = b.op('Relu', [c2], {}, 'act');
  b.node('Conv', [act, b.initializer('w3', [6, 1, 3, 3], arr(r, 54)), b.initializer('b3', [6], arr(r, 6))], { pads: [1, 1, 1, 1], group: 6 }, { outputs: ['y'], name: 'c3' });
  b.output('y', ['N', 6, 6, 6]);
  return b.build();
}

describe('cross-layer equalization', () => {
  it('finds linear and Relu pairs; only the unpadded linear one may be re-centred', () => {
    const pairs = findEqualizationPairs(equalizableChain());
    expect(pairs).toEqual([
      { producer: 'c1', consumer: 'c2', tensor: 'c1_out', shiftable: true },
      { producer: 'c2', consumer: 'c3', tensor: 'act_out', shiftable: false },
    ]);
  });

  it('balances each channel between activation and weight: s = √(a/w), dead channels untouched', () => {
    const { scale, shift } = equalizationFactors([{ lo: -4, hi: 4 }, { lo: 1, hi: 3 }, { lo: 0, hi: 0 }], [1, 4, 2], true);
    expect([...scale]).toEqual([2, Math.sqrt(1 / 4), 1]);
    expect([...shift]).toEqual([0, 2, 0]);
  });

  for (const from of ['weights', 'activations'] as const) {
    it(`keeps FP32 outputs and evens out channel widths (${from})`, async () => {
      const model = equalizableChain();
      const pairs = findEqualizationPairs(model);
      const x = randomInputs(8, 2 * 36, 4, -1, 1);
      const source = arraySource({ x: { data: x, dims: [8, 2, 6, 6] } });
      const ranks = convInputRanks(model, pairs);
      const measured = await measureChannelRanges(model, ranks, source);
      const { model: eq, pairs: done } = equalizeModel(model, pairs, from === 'activations' ? measured : undefined);
      expect(done).toHaveLength(2);
      expect(maxRelError(await run(model, x, [8, 2, 6, 6]), await run(eq, x, [8, 2, 6, 6]))).toBeLessThan(1e-5);
      // Spread of channel widths in the tensor between c1 and c2, before and after.
      const spread = (r: { min: ArrayLike<number>; max: ArrayLike<number> }) => {
        const widths = Array.from(r.min, (lo, i) => r.max[i] - lo);
        return Math.max(...widths) / Math.min(...widths);
      };
      const after = await measureChannelRanges(eq, ranks, source);
      expect(spread(after.get('c1_out')!)).toBeLessThan(spread(measured.get('c1_out')!) / 10);
    });
  }
});

describe('saturation intervals', () => {
  it('knows where HardSigmoid, written-out HardSwish, Relu and Clip stop responding', () => {
    const b = new ModelBuilder(11);
    b.input('x', ['N', 4]);
    const hsig = b.op('HardSigmoid', ['x'], { alpha: { float: 0.2 }, beta: { float: 0.5 } }, 'hsig');
    const plus = b.op('Add', ['x', b.initializer('three', [], [3])], {}, 'hs_add');
    const clip = b.op('Clip', [plus, b.initializer('lo', [], [0]), b.initializer('hi', [], [6])], {}, 'hs_clip');
    const hs = b.op('Mul', ['x', clip], {}, 'hs_mul');
    const relu = b.op('Relu', [hs], {}, 'relu');
    const c = b.op('Clip', [relu], { min: { float: -1 }, max: { float: 2 } }, 'clip_attr');
    const both = b.op('Add', [hsig, c], {}, 'both');
    b.output(both);
    const index = new GraphIndex(b.build().graph!);
    // x: HardSigmoid ignores it outside [−2.5, 2.5], the HardSwish ops below −3.
    expect(saturationInterval(index, 'x')).toEqual({ min: -3, max: Infinity });
    expect(saturationInterval(index, hsig)).toBeNull(); // a plain Add reads every value
    expect(saturationInterval(index, hs)).toEqual({ min: 0, max: Infinity });
    expect(saturationInterval(index, relu)).toEqual({ min: -1, max: 2 });
    expect(saturationInterval(index, both)).toBeNull(); // a graph output
  });
});

describe('dead-end pruning in the plan', () => {
  it('does not quantize written-out HardSwish internals, keeps Adds that feed a Conv', () => {
    const model = foldConvAffine(affineChain()).model;
    const plan = planQuantization(model);
    expect(plan.nodes).toEqual(['conv', 'conv2']);
    const r = seededRandom(3);
    const b = new ModelBuilder(13);
    b.input('x', ['N', 2, 4, 4]);
    const c1 = b.op('Conv', ['x', b.initializer('w1', [2, 2, 1, 1], arr(r, 4))], {}, 'c1');
    const c2 = b.op('Conv', ['x', b.initializer('w2', [2, 2, 1, 1], arr(r, 4))], {}, 'c2');
    const sum = b.op('Add', [c1, c2], {}, 'residual');
    b.node('Conv', [sum, b.initializer('w3', [2, 2, 1, 1], arr(r, 4))], {}, { outputs: ['y'], name: 'c3' });
    b.output('y');
    expect(planQuantization(b.build()).nodes).toEqual(['c1', 'c2', 'residual', 'c3']);
  });
});

describe('opset lift 9 → 10', () => {
  const ocrRecognizer = paths.ocrClassifier.replace('ch_ppocr_mobile_v2.0_cls_infer.onnx', 'ch_PP-OCRv4_rec_infer.onnx');

  it('rewrites the recogniser\'s Slices and leaves its FP32 outputs unchanged', async () => {
    const fp32 = readModel(ocrRecognizer);
    const { model, from, rewritten } = liftToOpset10(fp32);
    expect(from).toBe(9);
    expect(rewritten).toEqual({ Slice: 10 });
    const lines = digitLines({ count: 2, seed: 4, split: 'test', width: 320, rotatedFraction: 0 });
    const a = await run(fp32, lines.data, lines.dims);
    const b = await run(model, lines.data, lines.dims);
    expect(maxRelError(a, b)).toBe(0);
  });

  it('turns Upsample into Resize, TopK\'s k and Slice\'s bounds into inputs, Dropout into Identity', async () => {
    const b = new ModelBuilder(9);
    b.input('x', [1, 2, 4, 4]);
    const up = b.op('Upsample', ['x', b.initializer('scales', [4], [1, 1, 2, 2])], { mode: 'nearest' }, 'up');
    const drop = b.op('Dropout', [up], { ratio: { float: 0.5 } }, 'drop');
    const sl = b.op('Slice', [drop], { starts: [1], ends: [9223372036854775807n as unknown as number], axes: [3] }, 'slice');
    const flat = b.op('Flatten', [sl], { axis: 1 }, 'flat');
    b.node('TopK', [flat], { k: 3, axis: 1 }, { outputs: ['values', 'indices'], name: 'topk' });
    b.output('values', [1, 3]);
    const model = b.build();
    const { model: lifted, rewritten } = liftToOpset10(model);
    expect(rewritten).toEqual({ Upsample: 1, Dropout: 1, Slice: 1, TopK: 1 });
    expect(lifted.graph!.node.map((n) => n.opType)).toEqual(['Resize', 'Identity', 'Slice', 'Flatten', 'TopK']);
    const x = randomInputs(1, 32, 13);
    expect(await run(lifted, x, [1, 2, 4, 4])).toEqual(await run(model, x, [1, 2, 4, 4]));
  });
});

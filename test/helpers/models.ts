// Small models built in code for tests: random but seeded weights, real ONNX graphs.
import { mulberry32 } from '../../src/common/random.js';
import { ModelBuilder, type ModelProto } from '../../src/onnx/index.js';

export const seededRandom = mulberry32;

/** Conv → BN → Relu → MaxPool → depthwise Conv → Relu → Flatten → Gemm, input [N,1,28,28]. */
export function smallCnn(opset = 13, seed = 1): ModelProto {
  const r = seededRandom(seed);
  const arr = (n: number, s = 0.5) => Array.from({ length: n }, () => (r() - 0.5) * s);
  const b = new ModelBuilder(opset);
  b.input('input', ['N', 1, 28, 28]);
  const c1 = b.op('Conv', ['input', b.initializer('w1', [8, 1, 3, 3], arr(72, 2)), b.initializer('b1', [8], arr(8))], { pads: [1, 1, 1, 1] }, 'conv1');
  const bn = b.op('BatchNormalization', [c1, b.initializer('bn_g', [8], arr(8).map((v) => 1 + v)), b.initializer('bn_b', [8], arr(8)), b.initializer('bn_m', [8], arr(8)), b.initializer('bn_v', [8], arr(8).map((v) => 1 + v))], {}, 'bn1');
  const r1 = b.op('Relu', [bn], {}, 'relu1');
  const p1 = b.op('MaxPool', [r1], { kernel_shape: [2, 2], strides: [2, 2] }, 'pool1');
  const dw = b.op('Conv', [p1, b.initializer('wdw', [8, 1, 3, 3], arr(72, 2)), b.initializer('bdw', [8], arr(8))], { pads: [1, 1, 1, 1], group: 8 }, 'dwconv');
  const r2 = b.op('Relu', [dw], {}, 'relu2');
  const f = b.op('Flatten', [r2], {}, 'flatten');
  const g = b.op('Gemm', [f, b.initializer('wfc', [10, 8 * 14 * 14], arr(10 * 8 * 196, 0.2)), b.initializer('bfc', [10], arr(10))], { transB: 1 }, 'fc');
  b.node('Identity', [g], {}, { outputs: ['logits'], name: 'out' });
  b.output('logits', ['N', 10]);
  return b.build();
}

/** MatMul with B[K,N], Add of two branches, Concat: the chained-op placements. */
export function branchyMlp(seed = 2): ModelProto {
  const r = seededRandom(seed);
  const arr = (n: number, s = 0.5) => Array.from({ length: n }, () => (r() - 0.5) * s);
  const b = new ModelBuilder(13);
  b.input('x', ['N', 16]);
  const m1 = b.op('MatMul', ['x', b.initializer('B1', [16, 12], arr(192))], {}, 'mm1');
  const a1 = b.op('Relu', [m1], {}, 'act1');
  const m2 = b.op('MatMul', ['x', b.initializer('B2', [16, 12], arr(192))], {}, 'mm2');
  const a2 = b.op('Relu', [m2], {}, 'act2');
  const sum = b.op('Add', [a1, a2], {}, 'add');
  const cat = b.op('Concat', [sum, a1], { axis: 1 }, 'concat');
  b.node('Gemm', [cat, b.initializer('W3', [24, 5], arr(120)), b.initializer('b3', [5], arr(5))], {}, { outputs: ['y'], name: 'head' });
  b.output('y', ['N', 5]);
  return b.build();
}

export function randomInputs(n: number, per: number, seed = 3, lo = 0, hi = 1): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n * per }, () => lo + (hi - lo) * r());
}

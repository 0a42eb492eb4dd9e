// The op registry and the Q/DQ naming convention: categories come from one table, names
// read back as they were written, and the two "fused activation" facts stay apart.
import { describe, expect, it } from 'vitest';
import { GraphIndex, ModelBuilder } from '../../src/onnx/index.js';
import {
  CHAINED_OPS, COMPUTE_OPS, FP32_FUSED_ACTIVATIONS, QDQ_ABSORBED_ACTIVATIONS, SHARED_PARAM_OPS,
  dequantizedName, parseQdqNodeName, planQuantization, resultTensor,
} from '../../src/quant/index.js';
import { activationNames, renamedGraphOutput, sourceTensor } from '../../src/quant/naming.js';
import { ruleFor } from '../../src/quant/ops/index.js';

/** x → Conv → <activation> → Conv → y, weights 4×4×1×1. */
function convThen(activation: string) {
  const b = new ModelBuilder(13);
  b.input('x', ['N', 4, 8, 8]);
  const w = (name: string) => b.initializer(name, [4, 4, 1, 1], Array.from({ length: 16 }, (_, i) => (i % 5) / 10 - 0.2));
  const c1 = b.op('Conv', ['x', w('w1')], {}, 'conv1');
  const a = b.op(activation, [c1], {}, 'act');
  b.node('Conv', [a, w('w2')], {}, { outputs: ['y'], name: 'conv2' });
  b.output('y', ['N', 4, 8, 8]);
  return b.build();
}

describe('op registry', () => {
  it('gives every registered op exactly one category', () => {
    expect([...COMPUTE_OPS]).toEqual(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);
    expect([...CHAINED_OPS]).toEqual(['Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool']);
    expect([...SHARED_PARAM_OPS]).toEqual(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);
    for (const op of [...COMPUTE_OPS, ...CHAINED_OPS, ...SHARED_PARAM_OPS]) expect(ruleFor(op)).toBeDefined();
    expect(ruleFor('Sigmoid')).toBeUndefined();
  });

  // Two different facts, two names: ORT drops a Relu/Clip after a quantized op because the
  // quantized range clamps (so the Q/DQ pair goes after it); its FP32 optimiser fuses six
  // activation kinds into FusedConv (which is where their time goes in a profile).
  it('puts the Q/DQ pair after a sole Relu/Clip only; a Sigmoid stays FP32 after the quantized Conv output', () => {
    expect([...QDQ_ABSORBED_ACTIVATIONS]).toEqual(['Relu', 'Clip']);
    expect(FP32_FUSED_ACTIVATIONS.has('Sigmoid')).toBe(true);
    const relu = convThen('Relu');
    expect(resultTensor(new GraphIndex(relu.graph!), relu.graph!.node[0])).toBe(relu.graph!.node[1].output[0]);
    expect(planQuantization(relu).outputOf.get('conv1')).toBe(relu.graph!.node[1].output[0]);
    const sigmoid = convThen('Sigmoid');
    const conv1Out = sigmoid.graph!.node[0].output[0];
    expect(resultTensor(new GraphIndex(sigmoid.graph!), sigmoid.graph!.node[0])).toBe(conv1Out);
    const plan = planQuantization(sigmoid);
    expect(plan.outputOf.get('conv1')).toBe(conv1Out);
    expect(plan.tensors).toContain(conv1Out);
  });

  it('keeps a Relu FP32 when it is excluded, and quantizes the Conv output instead', () => {
    const m = convThen('Relu');
    expect(planQuantization(m, { exclude: ['act'] }).outputOf.get('conv1')).toBe(m.graph!.node[0].output[0]);
  });
});

describe('Q/DQ naming', () => {
  it('reads back the nodes it names', () => {
    expect(parseQdqNodeName(activationNames.quantizeNode('a__b'))).toEqual({ tensor: 'a__b', kind: 'quantize' });
    expect(parseQdqNodeName(activationNames.dequantizeNode('t'))).toEqual({ tensor: 't', kind: 'dequantize' });
    expect(parseQdqNodeName(activationNames.outputNode('y'))).toEqual({ tensor: 'y', kind: 'output' });
    expect(parseQdqNodeName('conv1')).toBeNull();
    expect(parseQdqNodeName('w__conv1__DequantizeWeight')).toBeNull();
  });

  it('strips only its own suffixes', () => {
    expect(sourceTensor(dequantizedName('relu1_out'))).toBe('relu1_out');
    expect(sourceTensor('relu1_out')).toBe('relu1_out');
    expect(renamedGraphOutput(activationNames.floatOutput('y'))).toBe('y');
    expect(renamedGraphOutput('y')).toBeNull();
  });
});

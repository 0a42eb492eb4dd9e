// Kernel attribution from a fixture kernel list (no ORT run): Q/DQ hops are recognised by
// calibd's own node names, and an activation ORT fuses in FP32 counts for its Conv.
import { describe, expect, it } from 'vitest';
import { ModelBuilder } from '../../src/onnx/index.js';
import { activationNames } from '../../src/quant/naming.js';
import { attributeKernelTimes, isActivationHop, type KernelTime } from '../../src/runtime/index.js';

function convSigmoidConv() {
  const b = new ModelBuilder(13);
  b.input('x', ['N', 4, 8, 8]);
  const w = (name: string) => b.initializer(name, [4, 4, 1, 1], new Array(16).fill(0.1));
  b.node('Conv', ['x', w('w1')], {}, { outputs: ['c1'], name: 'conv1' });
  b.node('Sigmoid', ['c1'], {}, { outputs: ['s1'], name: 'act' });
  b.node('Conv', ['s1', w('w2')], {}, { outputs: ['y'], name: 'conv2' });
  b.output('y', ['N', 4, 8, 8]);
  return b.build();
}

describe('attributeKernelTimes', () => {
  it('knows Q/DQ hops by name, ORT duplicates included, and not weight DQs', () => {
    expect(isActivationHop(activationNames.quantizeNode('c1'))).toBe(true);
    expect(isActivationHop(`${activationNames.dequantizeNode('c1')}/duplicated`)).toBe(true);
    expect(isActivationHop(activationNames.outputNode('y'))).toBe(false);
    expect(isActivationHop('w1__conv1__DequantizeWeight')).toBe(false);
    expect(isActivationHop('conv1')).toBe(false);
  });

  it('gives a hop to the quantized unit on its side and an FP32-fused activation to its Conv', () => {
    const kernels: KernelTime[] = [
      { name: activationNames.quantizeNode('x'), opType: 'QuantizeLinear', us: 2 },
      { name: 'conv1_token_1', opType: 'QLinearConv', us: 10 },
      { name: activationNames.dequantizeNode('c1'), opType: 'DequantizeLinear', us: 3 },
      { name: 'act', opType: 'Sigmoid', us: 4 },
      { name: 'conv2', opType: 'Conv', us: 20 },
      { name: 'ReorderOutput', opType: 'ReorderOutput', us: 5 },
    ];
    const a = attributeKernelTimes(convSigmoidConv(), kernels, ['conv1', 'conv2'], ['conv1']);
    expect(a.perUnit.get('conv1')).toBe(2 + 10 + 3 + 4);
    expect(a.perUnit.get('conv2')).toBe(20);
    expect(a.overheadUs).toBe(5);
    expect(a.totalUs).toBe(44);
  });
});

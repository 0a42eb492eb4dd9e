// The one op registry: op type → quantization rule. Every op category used elsewhere
// (selection's candidates, the profiler's attribution, the QDQ rewrite's guards) is read
// from here, so adding an op is one line.

import type { OpCategory, OpRule } from './rule.js';
import { conv } from './conv.js';
import { convTranspose } from './conv-transpose.js';
import { gemm } from './gemm.js';
import { matmul } from './matmul.js';
import { chained, sharedParams } from './passthrough.js';

const RULES: ReadonlyMap<string, OpRule> = new Map<string, OpRule>([
  ['Conv', conv],
  ['ConvTranspose', convTranspose],
  ['Gemm', gemm],
  ['MatMul', matmul],
  ['Add', chained],
  ['Mul', chained],
  ['Concat', chained],
  ['AveragePool', chained],
  ['GlobalAveragePool', chained],
  ['MaxPool', sharedParams],
  ['Flatten', sharedParams],
  ['Reshape', sharedParams],
  ['Transpose', sharedParams],
  ['Squeeze', sharedParams],
  ['Unsqueeze', sharedParams],
]);

/** The rule for an op type, or undefined for ops that always stay FP32. */
export function ruleFor(opType: string): OpRule | undefined {
  return RULES.get(opType);
}

function opsIn(category: OpCategory): ReadonlySet<string> {
  return new Set([...RULES].filter(([, r]) => r.category === category).map(([op]) => op));
}

/** Ops computed by integer kernels: the reason to quantize at all. */
export const COMPUTE_OPS = opsIn('compute');
/** Ops quantized between quantized tensors, each with its own output range. */
export const CHAINED_OPS = opsIn('chained');
/** Ops whose output reuses the input's parameters. */
export const SHARED_PARAM_OPS = opsIn('shared-params');

/**
 * Ops ORT quantizes by itself when they sit FP32 between a DequantizeLinear and a
 * QuantizeLinear (its WeightBiasQuantization pass): the rewrite guards their input.
 */
export const ORT_SELF_QUANTIZED_OPS: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/**
 * Activations ORT's FP32 graph optimiser fuses into the Conv/Gemm before them (the
 * activation kinds of its FusedConv kernel). A different fact from
 * QDQ_ABSORBED_ACTIVATIONS: this one says where an FP32 activation's time goes, the other
 * which activations a quantized range replaces.
 */
export const FP32_FUSED_ACTIVATIONS: ReadonlySet<string> = new Set(['Relu', 'Clip', 'HardSigmoid', 'Sigmoid', 'LeakyRelu', 'Tanh']);

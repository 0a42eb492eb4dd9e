// The runtime an INT8 model is built for. 'ort' (the default): Q/DQ placed where ONNX
// Runtime's CPU kernels fuse them (qdq.ts). 'tensorrt': explicit quantization as TensorRT
// builds it, for a Jetson. The one list of targets, and what each one fixes.
//
// What TensorRT asks of a Q/DQ model, the facts the 'tensorrt' target is built on:
//  - Its INT8 is symmetric: signed int8 with zero point 0, scale amax/127, for activations
//    and weights alike; its ONNX parser refuses uint8 QuantizeLinear (onnx/onnx-tensorrt#886).
//  - Activations are quantized per tensor and weights per output channel, which in ONNX
//    takes DequantizeLinear's axis attribute, so opset 13 (TensorRT developer guide,
//    "Explicit Quantization", ONNX support). Its deconvolution kernels take ConvTranspose
//    weights per channel along axis 0, the input channels (NVIDIA/TensorRT#2380), and it
//    has no per-output-channel form for them.
//  - A DequantizeLinear must read int8 data: an int32 bias behind one is refused ("only
//    activation types allowed as input", onnx/onnx-tensorrt#850), so biases stay float
//    and TensorRT quantizes them itself.
//  - Placement ("Q/DQ Layer-Placement Recommendations" in the same guide): quantize every
//    input of the weighted layers (convolution, transposed convolution, GEMM), and by
//    default not their outputs, which TensorRT keeps in higher precision for whatever
//    follows. It folds batch norms and fuses activations itself, so neither is simulated.
//    It can fuse an elementwise addition into the weighted layer before it, and the
//    fused output is INT8 only when the addition's other input, the residual, is
//    quantized: the recommendation is to quantize residual inputs. Layers that commute
//    with quantization (max pooling, reshapes) need no Q/DQ of their own, TensorRT moves
//    the pairs across them; quantizing the rest (average pooling, other elementwise ops)
//    is left as an option to use conservatively.
// What calibd writes for it: Q/DQ on the activation inputs of Conv, ConvTranspose, Gemm
// and MatMul and on the residual input of an Add fused behind one of them; nothing on
// outputs, pooling or shape ops. The first three facts are what TensorRT refuses without;
// the placement is its recommendation, followed as written.
// Sources: https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/quantized-types-explicit-quantization.html
// (section 7.4.4 of the TensorRT 8 developer guide), and the issues named above.

import { OptionError } from '../common/index.js';
import { resolveWeightRange, type WeightRange, type WeightRangeChoice } from './weight-range.js';
import { resolveActivationType, type ActivationType, type ActivationTypeChoice } from './activation-type.js';

export const QUANT_TARGETS = ['ort', 'tensorrt'] as const;
export type QuantTarget = (typeof QUANT_TARGETS)[number];

/** The options a target leaves open, checked: TensorRT refuses what it cannot build. */
export function checkTargetOptions(o: { target?: QuantTarget; activationType?: ActivationTypeChoice; reduceRange?: boolean }): void {
  const target = o.target ?? 'ort';
  if (!QUANT_TARGETS.includes(target)) {
    throw new OptionError(`unknown target '${String(target)}'`, { value: target, hint: `use one of ${QUANT_TARGETS.join(', ')}` });
  }
  if (target !== 'tensorrt') return;
  if (o.activationType === 'uint8') {
    throw new OptionError('target tensorrt takes int8 activations only (its parser refuses uint8 QuantizeLinear)', {
      value: o.activationType,
      hint: 'leave --activation-type at auto or int8 with --target tensorrt',
    });
  }
  if (o.reduceRange) {
    throw new OptionError('target tensorrt uses the full 8 bits; reduce-range is for x86 CPUs whose kernels saturate', {
      value: 'reduceRange',
      hint: 'drop --reduce-range with --target tensorrt',
    });
  }
}

/**
 * The weight range a target's kernels take: 'auto' on TensorRT is the full range (GPU
 * kernels accumulate in int32; the x86 saturation weight-range.ts guards against does not
 * apply), anywhere else what this CPU can take.
 */
export function targetWeightRange(target: QuantTarget | undefined, choice: WeightRangeChoice | undefined, reduceRange?: boolean): WeightRange {
  if (target === 'tensorrt' && (choice ?? 'auto') === 'auto') return 'full';
  return resolveWeightRange(choice, reduceRange);
}

/** The quantize options a target decides or constrains. */
interface TargetChoices {
  target?: QuantTarget;
  symmetricActivations?: boolean;
  activationType?: ActivationTypeChoice;
  weightRange?: WeightRangeChoice;
  reduceRange?: boolean;
}

/**
 * `o` checked, with what the target fixes filled in: symmetric int8 activations for
 * TensorRT, the weight range the target's kernels take, the activation type for this
 * platform. Idempotent: the calibrator resolves once, and the QDQ writer resolving again
 * changes nothing.
 */
export function resolveTargetOptions<O extends TargetChoices>(
  o: O,
): O & { target: QuantTarget; symmetricActivations: boolean; activationType: ActivationType; weightRange: WeightRange } {
  checkTargetOptions(o);
  const target = o.target ?? 'ort';
  const symmetricActivations = target === 'tensorrt' || (o.symmetricActivations ?? false);
  return {
    ...o,
    target,
    symmetricActivations,
    weightRange: targetWeightRange(target, o.weightRange, o.reduceRange),
    activationType: resolveActivationType(o.activationType, symmetricActivations),
  };
}

// The Q/DQ naming convention: every tensor and node the QDQ rewrite adds is named after the
// FP32 tensor (or weight) it stands for, with a fixed suffix. ORT keeps these names in its
// profiles, so the profiler attribution reads them back; nothing outside this module spells
// a suffix.

/** Names of what an activation tensor `t` gets when it is quantized. */
export const activationNames = {
  scale: (t: string) => `${t}__scale`,
  zeroPoint: (t: string) => `${t}__zp`,
  /** Output of the QuantizeLinear (also the stored values of a quantized constant). */
  quantized: (t: string) => `${t}__q`,
  /** Output of the DequantizeLinear: what the consumers of `t` read instead of `t`. */
  dequantized: (t: string) => `${t}__dq`,
  quantizeNode: (t: string) => `${t}__QuantizeLinear`,
  dequantizeNode: (t: string) => `${t}__DequantizeLinear`,
  /**
   * A quantized graph output keeps its name through an Identity after the DequantizeLinear;
   * its producer writes `floatOutput(t)` instead.
   */
  floatOutput: (t: string) => `${t}__f`,
  outputNode: (t: string) => `${t}__Output`,
} as const;

/** Consumers of a quantized tensor read its dequantized copy under this name. */
export const dequantizedName = activationNames.dequantized;

/**
 * Per-channel DequantizeLinear in front of an FP32 Conv/Gemm that reads quantized tensor `t`
 * (see the guard phase in qdq.ts): named after the dequantized copy and the node.
 */
export function guardNames(t: string, node: string) {
  const g = `${activationNames.dequantized(t)}__${node}`;
  return { output: g, scale: `${g}__scale`, zeroPoint: `${g}__zp`, node: `${g}__DequantizeLinear` };
}

/** Weight and int32 bias of one node, named after the weight and the node that reads it. */
export function weightNames(weight: string, node: string) {
  const base = `${weight}__${node}`;
  return {
    quantized: `${base}__wq`, scale: `${base}__wscale`, zeroPoint: `${base}__wzp`, dequantized: `${base}__wdq`, node: `${base}__DequantizeWeight`,
    biasQuantized: `${base}__bq`, biasScale: `${base}__bscale`, biasZeroPoint: `${base}__bzp`, biasDequantized: `${base}__bdq`, biasNode: `${base}__DequantizeBias`,
    /** A corrected bias kept float (TensorRT takes no int32 DequantizeLinear). */
    biasFloat: `${base}__bias`,
  };
}

/** The tensor a name refers to, with a dequantized copy's suffix taken off. */
export function sourceTensor(name: string): string {
  const suffix = activationNames.dequantized('');
  return name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
}

/** The graph output a producer's renamed output stands for, or null for any other name. */
export function renamedGraphOutput(name: string): string | null {
  const suffix = activationNames.floatOutput('');
  return name.endsWith(suffix) ? name.slice(0, -suffix.length) : null;
}

export type QdqNodeKind = 'quantize' | 'dequantize' | 'output';

const NODE_SUFFIXES: ReadonlyArray<[string, QdqNodeKind]> = [
  [activationNames.quantizeNode(''), 'quantize'],
  [activationNames.dequantizeNode(''), 'dequantize'],
  [activationNames.outputNode(''), 'output'],
];

/** An activation Q/DQ node's name read back: the tensor it is for, and which node it is. */
export function parseQdqNodeName(name: string): { tensor: string; kind: QdqNodeKind } | null {
  for (const [suffix, kind] of NODE_SUFFIXES) {
    if (name.endsWith(suffix)) return { tensor: name.slice(0, -suffix.length), kind };
  }
  return null;
}

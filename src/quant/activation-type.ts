// The integer type of quantized activations on this platform.
//
// ONNX Runtime fuses Q/DQ groups whose activations are int8 (S8S8: int8 activations, int8
// weights) into integer kernels only where its QDQIsInt8Allowed() holds: by default on
// ARM64 and not on x86-64 (the session option `session.qdqisint8allowed`, documented in
// ORT's onnxruntime_session_options_config_keys.h, says to set it to 1 for ARM and 0 for
// other platforms). On x86 its kernels take uint8 activations (U8S8, VPMADDUBSW/VPDPBUSD);
// on ARM64 MLAS has signed int8 GEMM kernels (SDOT with the dot-product extension, SMMLA with
// i8mm). So 'auto' picks int8 on arm64 and uint8 elsewhere. Both use the full 8 bits with an
// asymmetric zero point; only the offset of the integer range differs.

export type ActivationType = 'uint8' | 'int8';
export const ACTIVATION_TYPES = ['auto', 'uint8', 'int8'] as const;
export type ActivationTypeChoice = (typeof ACTIVATION_TYPES)[number];

/** The activation type whose QDQ groups ORT fuses into integer kernels on `arch`. Pure. */
export function activationTypeFor(arch: string): ActivationType {
  return arch === 'arm64' ? 'int8' : 'uint8';
}

/**
 * The activation type quantization uses: int8 under symmetric activations (zero point 0
 * needs a signed type), else the choice, with 'auto' (or undefined) resolved for `arch`.
 */
export function resolveActivationType(choice: ActivationTypeChoice | undefined, symmetric = false, arch: string = process.arch): ActivationType {
  if (symmetric) return 'int8';
  if (choice === 'uint8' || choice === 'int8') return choice;
  return activationTypeFor(arch);
}

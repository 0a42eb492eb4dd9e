// How many bits int8 weights may use on this CPU.
//
// On x86-64 without VNNI, MLAS multiplies uint8 activations by int8 weights with
// VPMADDUBSW, which adds two u8×s8 products into a saturating int16: 255 × 127 × 2 =
// 64,770 overflows 32,767. Bright inputs meeting large weights then clip silently; on the
// PaddleOCR detector's first conv that alone took its output from 31 dB to 12 dB SQNR.
// Weights in [-63, 63] keep every pair sum inside int16 (255 × 63 × 2 = 32,130), which is
// what ONNX Runtime's own tool means by reduce_range. VNNI (VPDPBUSD) accumulates in
// int32, and ARM's NEON kernels (SDOT/UDOT, or widening multiplies) never saturate, so
// those keep the full range.

import { readFileSync } from 'node:fs';

export type WeightRange = 'full' | 'reduced';
export const WEIGHT_RANGES = ['auto', 'full', 'reduced'] as const;
export type WeightRangeChoice = (typeof WEIGHT_RANGES)[number];

/** The weight range that avoids int16 saturation on a CPU with these flags. Pure. */
export function weightRangeFor(arch: string, cpuFlags: readonly string[]): WeightRange {
  if (arch !== 'x64' && arch !== 'ia32') return 'full';
  const vnni = cpuFlags.some((f) => f === 'avx512_vnni' || f === 'avx_vnni' || f === 'avx_vnni_int8');
  return vnni ? 'full' : 'reduced';
}

let machineFlags: string[] | undefined;

/** The flags line of /proc/cpuinfo, read once; empty where there is none (then x86 takes 'reduced'). */
export function cpuFlags(cpuinfo = '/proc/cpuinfo'): string[] {
  if (cpuinfo === '/proc/cpuinfo' && machineFlags) return machineFlags;
  const flags = readFlags(cpuinfo);
  if (cpuinfo === '/proc/cpuinfo') machineFlags = flags;
  return flags;
}

function readFlags(cpuinfo: string): string[] {
  try {
    const line = readFileSync(cpuinfo, 'utf8').split('\n').find((l) => /^(flags|Features)\s*:/.test(l));
    return line ? line.split(':')[1].trim().split(/\s+/) : [];
  } catch {
    return [];
  }
}

/**
 * The weight range quantization uses: 'reduced' under reduceRange (7 bits for everything),
 * else the choice, with 'auto' (or undefined) resolved for this machine.
 */
export function resolveWeightRange(choice: WeightRangeChoice | undefined, reduceRange = false): WeightRange {
  if (reduceRange) return 'reduced';
  if (choice === 'full' || choice === 'reduced') return choice;
  return weightRangeFor(process.arch, cpuFlags());
}

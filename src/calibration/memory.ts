// How much activation memory calibration may hold at once, and how to stay inside it: a
// pure policy. The tap copies every measured activation of a batch out of ONNX Runtime, so
// on a real detector one 640×640 page is a few hundred MB and a batch of 32 is gigabytes.
// Batches are sized from the bytes one sample costs; when even one sample is over the
// budget, the tensors are fetched in groups over several runs of the same batch.

import { totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Never more than this for activations by default, whatever the device has. */
export const MAX_DEFAULT_ACTIVATION_MB = 512;
/** Tensors fetched per run while their sizes are still unknown (the first sample). */
export const PROBE_GROUP = 16;

const MB = 2 ** 20;
/**
 * Each fetched activation exists twice while it is counted: in ORT's output buffer and in
 * the copy handed to JavaScript. Sizes are charged that many times against the budget.
 */
export const COPIES_PER_FETCH = 2;

/**
 * Activation bytes per tap run beyond which bigger batches stop paying. A run whose
 * activations outgrow the caches costs more per sample (detector pages: batch 4 took 1.5×
 * batch 1's time a page, classifier lines the same per line at batch 1 and 8), while a
 * small model needs a batch to spread each run's fixed overhead (MNIST: batch 32).
 */
export const FAST_RUN_BYTES = 8 * MB;

/**
 * Fetched activation bytes between full garbage collections. Waiting for a whole budget's
 * worth let dead buffers pile up unevenly, and peak RSS grew with the sample count
 * (detector, 12 → 100 pages: +20%); a collection every 128 MB costs a few ms and keeps it
 * within 10%.
 */
export const COLLECT_EVERY_BYTES = 128 * MB;

/** An eighth of the device's RAM, at most 512 MB (e.g. 256 MB on a 2 GB Raspberry Pi). */
export function defaultMemoryBudgetMB(totalBytes = totalmem()): number {
  return Math.max(16, Math.min(MAX_DEFAULT_ACTIVATION_MB, Math.floor(totalBytes / MB / 8)));
}

/** Samples per tap run: as many as fit the budget, at least 1, at most `cap`. */
export function batchSizeFor(bytesPerSample: number, budgetBytes: number, cap: number): number {
  if (!(bytesPerSample > 0)) return cap;
  return Math.max(1, Math.min(cap, Math.floor(budgetBytes / bytesPerSample)));
}

/**
 * Tensors packed in graph order into groups whose bytes stay within the budget (a tensor
 * larger than the budget alone gets a group of its own); one group when all fit.
 */
export function tensorGroups(bytes: ReadonlyMap<string, number>, budgetBytes: number): string[][] {
  const groups: string[][] = [];
  let current: string[] = [];
  let used = 0;
  for (const [t, b] of bytes) {
    if (current.length > 0 && used + b > budgetBytes) {
      groups.push(current);
      current = [];
      used = 0;
    }
    current.push(t);
    used += b;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Fixed-size groups, for the first run, before any size is known. */
export function probeGroups(tensors: readonly string[], size = PROBE_GROUP): string[][] {
  const groups: string[][] = [];
  for (let i = 0; i < tensors.length; i += size) groups.push(tensors.slice(i, i + size));
  return groups;
}

let collect: (() => void) | null | undefined;

/**
 * A full garbage collection. ONNX Runtime hands outputs back in buffers V8 does not count
 * against its heap, so a tap that allocates little JavaScript never triggers a collection
 * and dead activations pile up (peak RSS grew 25% from 10 to 100 detector pages). Exposed
 * once through V8's flag; a no-op where that is refused.
 */
export function collectGarbage(): void {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  collect?.();
}

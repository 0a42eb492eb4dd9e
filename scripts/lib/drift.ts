// Drifted MNIST digits for the daemon tests, the demo and the benchmarks: what a camera
// does to a scene over time. `severity` 0 is the clean digit, 1 the full drift: pixel gain
// ×3 (clipped to 1), a lighter background and sensor noise. Seeded, so runs repeat.

import { mulberry32, IMAGE_SIZE } from './mnist-data.js';

export interface DriftSpec {
  /** 0 = clean … 1 = full drift. */
  severity: number;
  gain?: number;
  background?: number;
  noise?: number;
  seed?: number;
}

export function drift(images: Float32Array, spec: DriftSpec): Float32Array {
  const { severity } = spec;
  const gain = 1 + ((spec.gain ?? 3) - 1) * severity;
  const background = (spec.background ?? 0.35) * severity;
  const noise = (spec.noise ?? 0.15) * severity;
  const rand = mulberry32(spec.seed ?? 7);
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) {
    // Box-Muller from two uniforms; clipped to the sensor's [0, 1].
    const g = noise ? Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()) * noise : 0;
    const v = images[i] * gain + background * (1 - images[i]) + g;
    out[i] = Math.min(1, Math.max(0, v));
  }
  return out;
}

export const DIGIT = IMAGE_SIZE;

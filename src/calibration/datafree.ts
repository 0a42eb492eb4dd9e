// Data-free ranges: a usable INT8 calibration before any real sample exists.
//  - Where a BatchNormalization feeds a tensor, its output per channel is roughly
//    N(β, γ²) on the data the model was trained on, so β ± k·|γ| bounds it (then clamped by
//    a following Relu/Clip).
//  - Everything else comes from synthetic probes drawn inside the input contract (e.g.
//    pixels in [0, 1]) and run through the FP32 model.

import { OptionError, mulberry32 } from '../common/index.js';
import { GraphIndex, clipBounds, constantValues, writtenOutHardSwish, type ModelProto, type NodeProto } from '../onnx/index.js';
import type { Range } from '../quant/index.js';
import type { Batch, SampleSource } from './samples.js';

export interface DataFreeOptions {
  /** Width of the BN range in standard deviations (default 4). */
  bnSigmas?: number;
  /** Bounds of every input value, the model's input contract (default [0, 1]). */
  inputRange?: Range;
  /** Number of synthetic probe samples (default 64). */
  probes?: number;
  seed?: number;
  /**
   * Per-sample shape (batch axis excluded) of each input whose shape is not static, e.g.
   * `{ x: [3, 48, 192] }` for an image model with a dynamic width.
   */
  inputShapes?: Record<string, number[]>;
}

/** The model's BatchNormalization nodes whose scale (γ) and shift (β) are constants. */
function batchNorms(model: ModelProto, index: GraphIndex): { node: NodeProto; gamma: Float64Array; beta: Float64Array }[] {
  return model.graph!.node.flatMap((node) => {
    if (node.opType !== 'BatchNormalization') return [];
    const gamma = constantValues(index, node.input[1]);
    const beta = constantValues(index, node.input[2]);
    return gamma && beta ? [{ node, gamma, beta }] : [];
  });
}

/**
 * Ranges implied by BatchNormalization statistics in the *original* model (before BN is
 * folded into Conv): for the BN output, and for a sole Relu/Clip after it.
 */
export function batchNormRanges(model: ModelProto, bnSigmas = 4): Map<string, Range> {
  const index = new GraphIndex(model.graph!);
  const ranges = new Map<string, Range>();
  for (const { node, gamma, beta } of batchNorms(model, index)) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let c = 0; c < gamma.length; c++) {
      lo = Math.min(lo, beta[c] - bnSigmas * Math.abs(gamma[c]));
      hi = Math.max(hi, beta[c] + bnSigmas * Math.abs(gamma[c]));
    }
    const y = node.output[0];
    ranges.set(y, { min: lo, max: hi });
    const users = index.consumersOf(y);
    if (users.length === 1) {
      const clamp = activationClamp(users[0], index);
      if (clamp) ranges.set(users[0].output[0], { min: Math.max(lo, clamp.min), max: Math.min(hi, clamp.max) });
    }
  }
  return ranges;
}

/** Standard normal density and distribution. */
const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
function Phi(x: number): number {
  // Abramowitz–Stegun 7.1.26 via erf; |error| < 1.5e-7.
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return 0.5 * (1 + (x >= 0 ? erf : -erf));
}

/** E[f(z)] for z ~ N(mu, sigma²), by the midpoint rule over ±8σ. Pure. */
export function gaussianExpectation(f: (z: number) => number, mu: number, sigma: number, points = 256): number {
  if (!(sigma > 0)) return f(mu);
  let sum = 0;
  let weight = 0;
  const h = 16 / points;
  for (let i = 0; i < points; i++) {
    const u = -8 + (i + 0.5) * h;
    const w = phi(u);
    sum += w * f(mu + sigma * u);
    weight += w;
  }
  return sum / weight;
}

/** E[max(z, 0)] for z ~ N(mu, sigma²), in closed form. Pure. */
export function rectifiedMean(mu: number, sigma: number): number {
  if (!(sigma > 0)) return Math.max(mu, 0);
  return sigma * phi(mu / sigma) + mu * Phi(mu / sigma);
}

const hardSwish = (z: number) => z * Math.min(Math.max(z + 3, 0), 6) / 6;

/**
 * The activation after a BN output, as a function, and the tensor it writes: a sole Relu,
 * Clip or HardSwish, or HardSwish written out as Add(3)/Clip(0,6)/Mul/Div(6).
 */
function activationAfter(index: GraphIndex, y: string): { f: (z: number) => number; out: string; relu: boolean } | null {
  const users = index.consumersOf(y);
  if (users.length === 1) {
    const u = users[0];
    if (u.opType === 'Relu') return { f: (z) => Math.max(z, 0), out: u.output[0], relu: true };
    if (u.opType === 'HardSwish') return { f: hardSwish, out: u.output[0], relu: false };
    const clamp = activationClamp(u, index);
    if (clamp) return { f: (z) => Math.min(Math.max(z, clamp.min), clamp.max), out: u.output[0], relu: false };
    return null;
  }
  const hs = users.length === 2 ? writtenOutHardSwish(index, y) : null;
  if (!hs?.div) return null;
  const { k, m } = hs;
  return { f: (z) => (z * Math.min(Math.max(z + k, 0), m)) / m, out: hs.div.output[0], relu: false };
}

/**
 * Per-channel means implied by BatchNormalization statistics in the *original* model: a
 * BN output channel is taken as N(β, γ²), and its mean carried through a following
 * Relu (closed form), Clip or HardSwish (quadrature). Data-free bias correction (Nagel et
 * al. 2019, §4.2) subtracts (W_q − W)·E[x] with these means as E[x].
 */
export function batchNormMeans(model: ModelProto): Map<string, Float64Array> {
  const index = new GraphIndex(model.graph!);
  const means = new Map<string, Float64Array>();
  for (const { node, gamma, beta } of batchNorms(model, index)) {
    const y = node.output[0];
    means.set(y, Float64Array.from(beta));
    const act = activationAfter(index, y);
    if (!act) continue;
    means.set(act.out, beta.map((b, c) => (act.relu ? rectifiedMean(b, Math.abs(gamma[c])) : gaussianExpectation(act.f, b, Math.abs(gamma[c])))));
  }
  return means;
}

function activationClamp(node: NodeProto, index: GraphIndex): Range | undefined {
  if (node.opType === 'Relu') return { min: 0, max: Infinity };
  // A bound computed at run time clamps nothing that is known here.
  if (node.opType === 'Clip') return clipBounds(index, node) ?? { min: -Infinity, max: Infinity };
  return undefined;
}

/**
 * Per-sample shape of each graph input (the batch axis excluded): the model's static
 * shape, or the one given in `given` (which must agree with the model's static dims).
 */
export function inputSampleShapes(model: ModelProto, given: Record<string, number[]> = {}): Map<string, number[]> {
  const index = new GraphIndex(model.graph!);
  const shapes = new Map<string, number[]>();
  for (const input of model.graph!.input) {
    if (!index.graphInputs.includes(input.name)) continue;
    const type = input.type?.value;
    const dims = type?.case === 'tensorType' ? type.value.shape?.dim ?? [] : [];
    const sample = dims.slice(1).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : NaN));
    const explicit = Object.hasOwn(given, input.name) ? given[input.name] : undefined;
    if (explicit) {
      const fits = explicit.length === sample.length
        && explicit.every((d, i) => Number.isInteger(d) && d > 0 && (Number.isNaN(sample[i]) || sample[i] <= 0 || sample[i] === d));
      if (!fits) {
        throw new OptionError(`input shape [${explicit.join(', ')}] given for '${input.name}' does not fit the model's [${sample.map((d) => (Number.isNaN(d) ? '?' : d)).join(', ')}]`, {
          value: explicit,
          hint: 'give the per-sample shape without the batch axis, with the model\'s fixed dimensions unchanged',
        });
      }
      shapes.set(input.name, [...explicit]);
      continue;
    }
    if (sample.length === 0 || sample.some((d) => !Number.isFinite(d) || d <= 0)) {
      throw new OptionError(`input '${input.name}' has no static shape, which data-free probes need`, {
        value: input.name,
        hint: `give its shape: --input-shape ${input.name}=${['1', ...sample.map((d) => (Number.isFinite(d) && d > 0 ? d : 'N'))].join('x')} (CLI) or inputShapes: { ${input.name}: [${['1', ...sample.map((d) => (Number.isFinite(d) && d > 0 ? d : 'N'))].join(', ')}] } (config), or calibrate from samples (--data) instead of --method datafree`,
      });
    }
    shapes.set(input.name, sample);
  }
  return shapes;
}

/** True when some input of `model` has a dimension past the batch axis left free. */
export function hasDynamicInput(model: ModelProto): boolean {
  const index = new GraphIndex(model.graph!);
  return model.graph!.input.some((input) => {
    if (!index.graphInputs.includes(input.name)) return false;
    const type = input.type?.value;
    const dims = type?.case === 'tensorType' ? type.value.shape?.dim ?? [] : [];
    return dims.length === 0 || dims.slice(1).some((d) => d.value.case !== 'dimValue' || Number(d.value.value) <= 0);
  });
}

/**
 * Full input shapes as users write them (batch axis first, e.g. x = [1, 3, 640, 640]) to
 * the per-sample shapes the probes take.
 */
export function perSampleShapes(full: Record<string, number[]>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, dims] of Object.entries(full)) out[name] = dims.slice(1);
  return out;
}

/**
 * Synthetic probes inside the input contract. Images get a mix of flat noise, smooth
 * blobs and sparse strokes, which reach activation ranges closer to real scenes than
 * noise alone; other inputs get uniform noise.
 */
export function probeSource(model: ModelProto, opts: DataFreeOptions = {}): SampleSource {
  const shapes = inputSampleShapes(model, opts.inputShapes);
  const count = opts.probes ?? 64;
  const { min, max } = opts.inputRange ?? { min: 0, max: 1 };
  const rand = mulberry32(opts.seed ?? 12345);
  const makeSample = (shape: number[], k: number, out: Float32Array) => {
    const isImage = shape.length === 3;
    const kind = isImage ? k % 3 : 0;
    const [c, h, w] = isImage ? shape : [1, 1, out.length];
    if (kind === 0) {
      for (let i = 0; i < out.length; i++) out[i] = rand();
    } else if (kind === 1) {
      out.fill(0);
      const blobs = 1 + Math.floor(rand() * 4);
      for (let b = 0; b < blobs; b++) {
        const cy = rand() * h, cx = rand() * w, r = (0.1 + rand() * 0.3) * Math.min(h, w), a = rand();
        for (let ch = 0; ch < c; ch++)
          for (let y = 0; y < h; y++)
            for (let x = 0; x < w; x++) out[ch * h * w + y * w + x] += a * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r));
      }
      for (let i = 0; i < out.length; i++) out[i] = Math.min(1, out[i]);
    } else {
      out.fill(0);
      const strokes = 1 + Math.floor(rand() * 3);
      for (let s = 0; s < strokes; s++) {
        let y = rand() * h, x = rand() * w;
        const steps = Math.floor(Math.min(h, w) * (0.5 + rand()));
        let dir = rand() * 2 * Math.PI;
        for (let t = 0; t < steps; t++) {
          dir += (rand() - 0.5) * 0.8;
          y = Math.min(h - 1, Math.max(0, y + Math.sin(dir)));
          x = Math.min(w - 1, Math.max(0, x + Math.cos(dir)));
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++) {
              const yy = Math.round(y) + dy, xx = Math.round(x) + dx;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              const v = dy === 0 && dx === 0 ? 1 : 0.5;
              for (let ch = 0; ch < c; ch++) out[ch * h * w + yy * w + xx] = Math.max(out[ch * h * w + yy * w + xx], v);
            }
        }
      }
    }
    for (let i = 0; i < out.length; i++) out[i] = min + out[i] * (max - min);
  };
  return {
    count,
    async *batches(batchSize: number) {
      for (let start = 0; start < count; start += batchSize) {
        const n = Math.min(batchSize, count - start);
        const batch: Batch = {};
        for (const [name, shape] of shapes) {
          const per = shape.reduce((a, b) => a * b, 1);
          const data = new Float32Array(n * per);
          for (let i = 0; i < n; i++) makeSample(shape, start + i, data.subarray(i * per, (i + 1) * per));
          batch[name] = { data, dims: [n, ...shape] };
        }
        yield batch;
      }
    },
  };
}

// A small MNIST CNN with hand-written forward and backward passes over Float32Array.
// Layout NCHW. There is no ML library here, so every layer is a few plain loops:
//
//   conv1 (1→8, 3x3, pad 1, no bias) → bn1 → relu → maxpool 2x2      28x28 → 14x14
//   conv2 (8→16, 3x3, pad 1, no bias) → bn2 → relu → maxpool 2x2     14x14 → 7x7
//   flatten (784) → fc1 (784→64) → relu → fc2 (64→10) → logits
//
// The convolutions carry no bias: a BatchNormalization right after them subtracts the
// batch mean, so a bias would get zero gradient. BN trains on batch statistics and keeps
// running statistics (PyTorch convention: new = (1 − m)·old + m·batch, unbiased variance)
// that inference uses.

import { mulberry32 } from './mnist-data.js';

export const BN_EPSILON = 1e-5;
/** Weight of the current batch in the running statistics (ONNX's momentum is 1 − this). */
export const BN_MOMENTUM = 0.1;

const C1 = 8;
const C2 = 16;
const H1 = 28;
const H2 = 14;
const H3 = 7;
const FLAT = C2 * H3 * H3; // 784
const HIDDEN = 64;
const CLASSES = 10;

export interface Param {
  name: string;
  dims: number[];
  value: Float32Array;
  grad: Float32Array;
  /** Adam first and second moments. */
  m: Float32Array;
  v: Float32Array;
}

export interface BatchNormState {
  scale: Param;
  bias: Param;
  runningMean: Float32Array;
  runningVar: Float32Array;
}

function param(name: string, dims: number[], init: (i: number) => number): Param {
  const n = dims.reduce((a, b) => a * b, 1);
  const value = new Float32Array(n);
  for (let i = 0; i < n; i++) value[i] = init(i);
  return { name, dims, value, grad: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
}

function batchNorm(name: string, channels: number): BatchNormState {
  return {
    scale: param(`${name}.scale`, [channels], () => 1),
    bias: param(`${name}.bias`, [channels], () => 0),
    runningMean: new Float32Array(channels),
    runningVar: new Float32Array(channels).fill(1),
  };
}

/** Standard normal samples from a seeded uniform source (Box–Muller). */
function gaussian(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Activations of one batch, kept for the backward pass. */
class Buffers {
  readonly conv1: Float32Array;
  readonly bn1: Float32Array; // after BN and ReLU
  readonly xhat1: Float32Array;
  readonly pool1: Float32Array;
  readonly arg1: Int32Array;
  readonly conv2: Float32Array;
  readonly bn2: Float32Array;
  readonly xhat2: Float32Array;
  readonly pool2: Float32Array;
  readonly arg2: Int32Array;
  /** Dropout multipliers on the flattened features (0 or 1/(1 − p)); training only. */
  readonly keep: Float32Array;
  readonly fc1: Float32Array; // after ReLU
  readonly logits: Float32Array;
  // Gradients.
  readonly dLogits: Float32Array;
  readonly dFc1: Float32Array;
  readonly dPool2: Float32Array;
  readonly dBn2: Float32Array;
  readonly dPool1: Float32Array;
  readonly dBn1: Float32Array;
  readonly invStd1 = new Float32Array(C1);
  readonly invStd2 = new Float32Array(C2);

  constructor(readonly batch: number) {
    const b = batch;
    this.conv1 = new Float32Array(b * C1 * H1 * H1);
    this.bn1 = new Float32Array(this.conv1.length);
    this.xhat1 = new Float32Array(this.conv1.length);
    this.pool1 = new Float32Array(b * C1 * H2 * H2);
    this.arg1 = new Int32Array(this.pool1.length);
    this.conv2 = new Float32Array(b * C2 * H2 * H2);
    this.bn2 = new Float32Array(this.conv2.length);
    this.xhat2 = new Float32Array(this.conv2.length);
    this.pool2 = new Float32Array(b * FLAT);
    this.arg2 = new Int32Array(this.pool2.length);
    this.keep = new Float32Array(this.pool2.length);
    this.fc1 = new Float32Array(b * HIDDEN);
    this.logits = new Float32Array(b * CLASSES);
    this.dLogits = new Float32Array(this.logits.length);
    this.dFc1 = new Float32Array(this.fc1.length);
    this.dPool2 = new Float32Array(this.pool2.length);
    this.dBn2 = new Float32Array(this.bn2.length);
    this.dPool1 = new Float32Array(this.pool1.length);
    this.dBn1 = new Float32Array(this.bn1.length);
  }
}

export class TinyCnn {
  readonly conv1: Param;
  readonly bn1: BatchNormState;
  readonly conv2: Param;
  readonly bn2: BatchNormState;
  readonly fc1w: Param;
  readonly fc1b: Param;
  readonly fc2w: Param;
  readonly fc2b: Param;
  private buffers: Buffers | undefined;
  private adamStep = 0;
  private dropoutActive = false;
  private readonly dropoutRand: () => number;

  /**
   * @param dropout rate of inverted dropout on the flattened features before fc1, in
   *   training only; the exported graph has no Dropout node (it is the identity at inference).
   */
  constructor(seed: number, readonly dropout = 0) {
    this.dropoutRand = mulberry32(seed ^ 0x5eed);
    const randn = gaussian(mulberry32(seed));
    const he = (fanIn: number) => () => randn() * Math.sqrt(2 / fanIn);
    this.conv1 = param('conv1.weight', [C1, 1, 3, 3], he(9));
    this.bn1 = batchNorm('bn1', C1);
    this.conv2 = param('conv2.weight', [C2, C1, 3, 3], he(C1 * 9));
    this.bn2 = batchNorm('bn2', C2);
    this.fc1w = param('fc1.weight', [HIDDEN, FLAT], he(FLAT));
    this.fc1b = param('fc1.bias', [HIDDEN], () => 0);
    this.fc2w = param('fc2.weight', [CLASSES, HIDDEN], () => randn() * Math.sqrt(1 / HIDDEN));
    this.fc2b = param('fc2.bias', [CLASSES], () => 0);
  }

  params(): Param[] {
    return [this.conv1, this.bn1.scale, this.bn1.bias, this.conv2, this.bn2.scale, this.bn2.bias, this.fc1w, this.fc1b, this.fc2w, this.fc2b];
  }

  private buffersFor(batch: number): Buffers {
    if (!this.buffers || this.buffers.batch !== batch) this.buffers = new Buffers(batch);
    return this.buffers;
  }

  /**
   * Forward pass over `batch` images (batch × 784). In training mode BN uses batch
   * statistics and updates its running statistics. Returns logits (batch × 10), a view
   * that the next call overwrites.
   */
  forward(images: Float32Array, batch: number, training: boolean): Float32Array {
    const buf = this.buffersFor(batch);
    conv3x3(images, batch, 1, H1, this.conv1.value, C1, buf.conv1);
    batchNormRelu(buf.conv1, batch, C1, H1 * H1, this.bn1, training, buf.xhat1, buf.invStd1, buf.bn1);
    maxPool2(buf.bn1, batch * C1, H1, buf.pool1, buf.arg1);
    conv3x3(buf.pool1, batch, C1, H2, this.conv2.value, C2, buf.conv2);
    batchNormRelu(buf.conv2, batch, C2, H2 * H2, this.bn2, training, buf.xhat2, buf.invStd2, buf.bn2);
    maxPool2(buf.bn2, batch * C2, H2, buf.pool2, buf.arg2);
    this.dropoutActive = training && this.dropout > 0;
    if (this.dropoutActive) {
      const scale = 1 / (1 - this.dropout);
      for (let i = 0; i < buf.pool2.length; i++) {
        buf.keep[i] = this.dropoutRand() < this.dropout ? 0 : scale;
        buf.pool2[i] *= buf.keep[i];
      }
    }
    dense(buf.pool2, batch, FLAT, this.fc1w.value, this.fc1b.value, HIDDEN, buf.fc1, true);
    dense(buf.fc1, batch, HIDDEN, this.fc2w.value, this.fc2b.value, CLASSES, buf.logits, false);
    return buf.logits;
  }

  /**
   * Softmax cross-entropy on the logits of the last forward pass, then the backward pass;
   * gradients (mean over the batch) land in each Param's `grad`. Returns the mean loss.
   */
  backward(images: Float32Array, labels: Uint8Array, batch: number): number {
    const buf = this.buffersFor(batch);
    let loss = 0;
    for (let b = 0; b < batch; b++) {
      const o = b * CLASSES;
      let max = -Infinity;
      for (let k = 0; k < CLASSES; k++) max = Math.max(max, buf.logits[o + k]);
      let sum = 0;
      for (let k = 0; k < CLASSES; k++) sum += Math.exp(buf.logits[o + k] - max);
      const label = labels[b];
      loss += Math.log(sum) + max - buf.logits[o + label];
      for (let k = 0; k < CLASSES; k++) {
        const p = Math.exp(buf.logits[o + k] - max) / sum;
        buf.dLogits[o + k] = (p - (k === label ? 1 : 0)) / batch;
      }
    }
    for (const p of this.params()) p.grad.fill(0);

    denseBackward(buf.fc1, batch, HIDDEN, this.fc2w, this.fc2b, CLASSES, buf.dLogits, buf.dFc1);
    for (let i = 0; i < buf.fc1.length; i++) if (buf.fc1[i] <= 0) buf.dFc1[i] = 0;
    denseBackward(buf.pool2, batch, FLAT, this.fc1w, this.fc1b, HIDDEN, buf.dFc1, buf.dPool2);
    if (this.dropoutActive) for (let i = 0; i < buf.dPool2.length; i++) buf.dPool2[i] *= buf.keep[i];
    maxPool2Backward(buf.dPool2, buf.arg2, buf.dBn2);
    batchNormReluBackward(buf.dBn2, buf.bn2, buf.xhat2, buf.invStd2, batch, C2, H2 * H2, this.bn2);
    // dBn2 now holds the gradient at the conv2 output.
    conv3x3Backward(buf.pool1, batch, C1, H2, this.conv2, C2, buf.dBn2, buf.dPool1);
    maxPool2Backward(buf.dPool1, buf.arg1, buf.dBn1);
    batchNormReluBackward(buf.dBn1, buf.bn1, buf.xhat1, buf.invStd1, batch, C1, H1 * H1, this.bn1);
    conv3x3Backward(images, batch, 1, H1, this.conv1, C1, buf.dBn1, undefined);
    return loss / batch;
  }

  /**
   * One Adam step over every parameter, with decoupled weight decay (AdamW) on the conv and
   * fully connected weights only, never on biases or BN parameters.
   */
  adam(lr: number, weightDecay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): void {
    this.adamStep++;
    const c1 = 1 - beta1 ** this.adamStep;
    const c2 = 1 - beta2 ** this.adamStep;
    for (const p of this.params()) {
      const { value, grad, m, v } = p;
      const decay = p.name.endsWith('.weight') ? 1 - lr * weightDecay : 1;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i];
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        value[i] = value[i] * decay - (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
      }
    }
  }
}

/** 3x3 convolution, stride 1, zero padding 1, no bias: in [B,C,H,H] → out [B,Co,H,H]. */
function conv3x3(inp: Float32Array, batch: number, cin: number, h: number, weight: Float32Array, cout: number, out: Float32Array): void {
  const plane = h * h;
  out.fill(0);
  for (let b = 0; b < batch; b++) {
    for (let oc = 0; oc < cout; oc++) {
      const oBase = (b * cout + oc) * plane;
      for (let ic = 0; ic < cin; ic++) {
        const iBase = (b * cin + ic) * plane;
        const wBase = (oc * cin + ic) * 9;
        for (let ky = 0; ky < 3; ky++) {
          const dy = ky - 1;
          const y0 = Math.max(0, -dy);
          const y1 = Math.min(h, h - dy);
          for (let kx = 0; kx < 3; kx++) {
            const dx = kx - 1;
            const x0 = Math.max(0, -dx);
            const x1 = Math.min(h, h - dx);
            const w = weight[wBase + ky * 3 + kx];
            for (let y = y0; y < y1; y++) {
              const o = oBase + y * h;
              const i = iBase + (y + dy) * h + dx;
              for (let x = x0; x < x1; x++) out[o + x] += w * inp[i + x];
            }
          }
        }
      }
    }
  }
}

/** Gradients of conv3x3: weight gradient into `weight.grad`, input gradient into dIn if given. */
function conv3x3Backward(
  inp: Float32Array, batch: number, cin: number, h: number, weight: Param, cout: number,
  dOut: Float32Array, dIn: Float32Array | undefined,
): void {
  const plane = h * h;
  const w = weight.value;
  const dw = weight.grad;
  if (dIn) dIn.fill(0);
  for (let b = 0; b < batch; b++) {
    for (let oc = 0; oc < cout; oc++) {
      const oBase = (b * cout + oc) * plane;
      for (let ic = 0; ic < cin; ic++) {
        const iBase = (b * cin + ic) * plane;
        const wBase = (oc * cin + ic) * 9;
        for (let ky = 0; ky < 3; ky++) {
          const dy = ky - 1;
          const y0 = Math.max(0, -dy);
          const y1 = Math.min(h, h - dy);
          for (let kx = 0; kx < 3; kx++) {
            const dx = kx - 1;
            const x0 = Math.max(0, -dx);
            const x1 = Math.min(h, h - dx);
            const wk = w[wBase + ky * 3 + kx];
            let acc = 0;
            for (let y = y0; y < y1; y++) {
              const o = oBase + y * h;
              const i = iBase + (y + dy) * h + dx;
              if (dIn) {
                for (let x = x0; x < x1; x++) {
                  const g = dOut[o + x];
                  acc += g * inp[i + x];
                  dIn[i + x] += wk * g;
                }
              } else {
                for (let x = x0; x < x1; x++) acc += dOut[o + x] * inp[i + x];
              }
            }
            dw[wBase + ky * 3 + kx] += acc;
          }
        }
      }
    }
  }
}

/** BatchNormalization followed by ReLU, per channel over batch and spatial positions. */
function batchNormRelu(
  x: Float32Array, batch: number, channels: number, plane: number, bn: BatchNormState, training: boolean,
  xhat: Float32Array, invStd: Float32Array, out: Float32Array,
): void {
  const count = batch * plane;
  for (let c = 0; c < channels; c++) {
    let mean: number;
    let inv: number;
    if (training) {
      let sum = 0;
      for (let b = 0; b < batch; b++) {
        const base = (b * channels + c) * plane;
        for (let i = 0; i < plane; i++) sum += x[base + i];
      }
      mean = sum / count;
      let sq = 0;
      for (let b = 0; b < batch; b++) {
        const base = (b * channels + c) * plane;
        for (let i = 0; i < plane; i++) {
          const d = x[base + i] - mean;
          sq += d * d;
        }
      }
      const variance = sq / count;
      inv = 1 / Math.sqrt(variance + BN_EPSILON);
      bn.runningMean[c] = (1 - BN_MOMENTUM) * bn.runningMean[c] + BN_MOMENTUM * mean;
      bn.runningVar[c] = (1 - BN_MOMENTUM) * bn.runningVar[c] + BN_MOMENTUM * ((variance * count) / (count - 1));
    } else {
      mean = bn.runningMean[c];
      inv = 1 / Math.sqrt(bn.runningVar[c] + BN_EPSILON);
    }
    invStd[c] = inv;
    const g = bn.scale.value[c];
    const beta = bn.bias.value[c];
    for (let b = 0; b < batch; b++) {
      const base = (b * channels + c) * plane;
      for (let i = 0; i < plane; i++) {
        const n = (x[base + i] - mean) * inv;
        xhat[base + i] = n;
        const y = g * n + beta;
        out[base + i] = y > 0 ? y : 0;
      }
    }
  }
}

/**
 * Backward through ReLU and training-mode BN. `d` holds the gradient at the ReLU output on
 * entry and the gradient at the BN input on return.
 */
function batchNormReluBackward(
  d: Float32Array, out: Float32Array, xhat: Float32Array, invStd: Float32Array,
  batch: number, channels: number, plane: number, bn: BatchNormState,
): void {
  const count = batch * plane;
  for (let c = 0; c < channels; c++) {
    let sumD = 0;
    let sumDX = 0;
    for (let b = 0; b < batch; b++) {
      const base = (b * channels + c) * plane;
      for (let i = 0; i < plane; i++) {
        if (out[base + i] <= 0) d[base + i] = 0;
        const g = d[base + i];
        sumD += g;
        sumDX += g * xhat[base + i];
      }
    }
    bn.scale.grad[c] += sumDX;
    bn.bias.grad[c] += sumD;
    const k = (bn.scale.value[c] * invStd[c]) / count;
    for (let b = 0; b < batch; b++) {
      const base = (b * channels + c) * plane;
      for (let i = 0; i < plane; i++) d[base + i] = k * (count * d[base + i] - sumD - xhat[base + i] * sumDX);
    }
  }
}

/** 2x2 max pooling, stride 2, over `planes` square planes of side h; records the argmax. */
function maxPool2(x: Float32Array, planes: number, h: number, out: Float32Array, arg: Int32Array): void {
  const ho = h >> 1;
  for (let p = 0; p < planes; p++) {
    const iBase = p * h * h;
    const oBase = p * ho * ho;
    for (let y = 0; y < ho; y++) {
      for (let xo = 0; xo < ho; xo++) {
        const i0 = iBase + 2 * y * h + 2 * xo;
        let best = i0;
        if (x[i0 + 1] > x[best]) best = i0 + 1;
        if (x[i0 + h] > x[best]) best = i0 + h;
        if (x[i0 + h + 1] > x[best]) best = i0 + h + 1;
        out[oBase + y * ho + xo] = x[best];
        arg[oBase + y * ho + xo] = best;
      }
    }
  }
}

function maxPool2Backward(dOut: Float32Array, arg: Int32Array, dIn: Float32Array): void {
  dIn.fill(0);
  for (let i = 0; i < dOut.length; i++) dIn[arg[i]] += dOut[i];
}

/** out[b,o] = bias[o] + Σ W[o,i]·x[b,i] (Gemm with transB = 1), optionally ReLU. */
function dense(x: Float32Array, batch: number, nin: number, w: Float32Array, bias: Float32Array, nout: number, out: Float32Array, relu: boolean): void {
  for (let b = 0; b < batch; b++) {
    const xBase = b * nin;
    for (let o = 0; o < nout; o++) {
      const wBase = o * nin;
      let acc = 0;
      for (let i = 0; i < nin; i++) acc += w[wBase + i] * x[xBase + i];
      acc += bias[o];
      out[b * nout + o] = relu && acc < 0 ? 0 : acc;
    }
  }
}

function denseBackward(x: Float32Array, batch: number, nin: number, w: Param, bias: Param, nout: number, dOut: Float32Array, dIn: Float32Array): void {
  dIn.fill(0);
  for (let b = 0; b < batch; b++) {
    const xBase = b * nin;
    for (let o = 0; o < nout; o++) {
      const g = dOut[b * nout + o];
      if (g === 0) continue;
      bias.grad[o] += g;
      const wBase = o * nin;
      for (let i = 0; i < nin; i++) {
        w.grad[wBase + i] += g * x[xBase + i];
        dIn[xBase + i] += g * w.value[wBase + i];
      }
    }
  }
}

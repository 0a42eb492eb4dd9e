// Bias correction on the bundled MNIST CNN with real ORT sessions: the channel means the
// tap computes in-graph equal the means of the activations themselves; empirical
// correction makes every corrected layer's INT8 output mean match FP32's on the samples it
// was measured on; and the choice is recorded in the calibration profile.
import { describe, expect, it } from 'vitest';
import { arraySource, calibrate, Calibrator, ChannelMeanObserver, toFeeds } from '../../src/calibration/index.js';
import { biasCorrectedInputs, channelMeanOutput, withChannelMeans } from '../../src/calibration/channel-means.js';
import { GraphIndex, readModel, valueInfo } from '../../src/onnx/index.js';
import { createSession } from '../../src/runtime/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../../scripts/lib/mnist-data.js';
import { paths } from '../helpers/paths.js';
import { batchNormMeans, gaussianExpectation, rectifiedMean } from '../../src/calibration/datafree.js';
import { syntheticTextLines } from '../../scripts/lib/ocr-synthetic.js';

const { train } = loadMnistSplit();
const samples = (n: number, from = 0) => arraySource({ input: { data: train.images.subarray(from * IMAGE_SIZE, (from + n) * IMAGE_SIZE), dims: [n, 1, 28, 28] } });

describe('ChannelMeanObserver', () => {
  it('weights runs by their sample count and fades with decay', () => {
    const o = new ChannelMeanObserver();
    expect(o.mean()).toBeNull();
    o.update([1, 10], 1);
    o.update([3, 20], 3);
    expect(Array.from(o.mean()!)).toEqual([2.5, 17.5]);
    o.decay(0.5);
    o.update([0, 0], 2);
    expect(Array.from(o.mean()!)).toEqual([(0.5 * 10) / 4, (0.5 * 70) / 4]);
    o.update([NaN, 1], 5); // an overflowed run is skipped whole
    expect(o.mean()![0]).toBeCloseTo(1.25, 12);
  });
});

describe('bias correction on MNIST', () => {
  it('the in-graph channel means equal the activations\' own means', async () => {
    const c = await Calibrator.create(readModel(paths.mnistModel), { method: 'minmax' });
    try {
      const inputs = biasCorrectedInputs(c.prepared, c.plan);
      expect(inputs.size).toBeGreaterThan(1);
      const names = [...inputs.keys()];
      const model = withChannelMeans(c.prepared, inputs);
      for (const t of names) if (!model.graph!.output.some((o) => o.name === t)) model.graph!.output.push(valueInfo(t));
      const session = await createSession(model, {});
      const batch = (await samples(8).batches(8)[Symbol.asyncIterator]().next()).value!;
      const out = await session.run(toFeeds(batch));
      for (const t of names.filter((n) => n !== 'input')) {
        const x = out[t];
        const [n, ch] = [Number(x.dims[0]), Number(x.dims[1])];
        const per = (x.data as Float32Array).length / n / ch;
        const want = new Float64Array(ch);
        (x.data as Float32Array).forEach((v, i) => (want[Math.floor(i / per) % ch] += v / (n * per)));
        const got = out[channelMeanOutput(t)].data as Float32Array;
        for (let k = 0; k < ch; k++) expect(got[k]).toBeCloseTo(want[k], 4);
      }
      await session.release();
    } finally {
      await c.release();
    }
  });

  it('empirical: each corrected layer\'s mean output in INT8 matches FP32 on the calibration samples', async () => {
    const fp32 = readModel(paths.mnistModel);
    const source = samples(200);
    const plain = await calibrate(fp32, source, { method: 'percentile' });
    const corrected = await calibrate(fp32, source, { method: 'percentile', biasCorrection: 'empirical' });
    expect(plain.profile.options.biasCorrection).toBe('none');
    expect(corrected.profile.options.biasCorrection).toBe('empirical');
    const c = await Calibrator.create(fp32, { method: 'percentile' });
    await c.release();
    const index = new GraphIndex(c.prepared.graph!);
    // The output of every planned Conv/Gemm with a bias, and its rank.
    const ranks = new Map(
      c.prepared.graph!.node
        .filter((n) => c.plan.weights.some((w) => w.node === n.name && w.bias !== null))
        .map((n) => [n.output[0], n.opType === 'Gemm' ? 2 : index.initializers.get(n.input[1])!.dims.length]),
    );
    const outputs = [...ranks.keys()];
    expect(outputs.length).toBeGreaterThan(1);
    // Mean absolute gap between INT8 and FP32 channel means at each corrected output.
    const gap = async (int8: typeof plain.model) => {
      const fp = await createSession(withChannelMeans(c.prepared, ranks), {});
      const q = await createSession(withChannelMeans(int8, ranks), {});
      const batch = (await source.batches(200)[Symbol.asyncIterator]().next()).value!;
      const [a, b] = [await fp.run(toFeeds(batch)), await q.run(toFeeds(batch))];
      await fp.release();
      await q.release();
      let sum = 0;
      let count = 0;
      for (const t of outputs) {
        const x = a[channelMeanOutput(t)].data as Float32Array;
        const y = b[channelMeanOutput(t)].data as Float32Array;
        for (let k = 0; k < x.length; k++, count++) sum += Math.abs(x[k] - y[k]);
      }
      return sum / count;
    };
    const before = await gap(plain.model);
    const after = await gap(corrected.model);
    expect(after).toBeLessThan(0.1 * before);
  }, 60_000);
});

describe('data-free bias correction from BatchNorm statistics', () => {
  it('carries N(β, γ²) through Relu in closed form, and through any activation by quadrature', () => {
    // Rectified Gaussian: E[max(z, 0)] = σφ(μ/σ) + μΦ(μ/σ).
    expect(rectifiedMean(0, 1)).toBeCloseTo(1 / Math.sqrt(2 * Math.PI), 6);
    expect(rectifiedMean(2, 0)).toBe(2);
    expect(rectifiedMean(-2, 0)).toBe(0);
    expect(gaussianExpectation((z) => Math.max(z, 0), 0.3, 1.7)).toBeCloseTo(rectifiedMean(0.3, 1.7), 3);
    expect(gaussianExpectation((z) => z, -1.25, 3)).toBeCloseTo(-1.25, 6);
  });

  it('reads the means behind the OCR classifier\'s BNs, corrects its biases, and records it', async () => {
    const fp32 = readModel(paths.ocrClassifier);
    const means = batchNormMeans(fp32);
    expect(means.size).toBeGreaterThan(40);
    // Every Relu output's mean is non-negative, as a rectified mean must be.
    const index = new GraphIndex(fp32.graph!);
    const relus = [...means.keys()].filter((t) => index.producer.get(t)?.opType === 'Relu');
    expect(relus.length).toBeGreaterThan(5);
    for (const t of relus) expect(Math.min(...means.get(t)!)).toBeGreaterThanOrEqual(0);
    const lines = syntheticTextLines({ count: 8, seed: 3 });
    const source = arraySource({ x: { data: lines.data, dims: lines.dims } });
    const plain = await calibrate(fp32, source, { method: 'minmax', biasCorrection: 'none' });
    const corrected = await calibrate(fp32, source, { method: 'minmax', biasCorrection: 'datafree' });
    expect(corrected.profile.options.biasCorrection).toBe('datafree');
    const biases = (m: typeof plain.model) => m.graph!.initializer.filter((t) => t.name.endsWith('__bq')).map((t) => Buffer.from(t.rawData).toString('hex')).join();
    expect(biases(corrected.model)).not.toBe(biases(plain.model));
  });
});

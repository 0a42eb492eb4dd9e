// The daemon on a real detector: the PaddleOCR DBNet (dynamic H×W, a probability map as its
// output) served with `validation.metric: mask-iou:0.3`. Pages of real handwritten digits
// go in over KServe v2's binary extension; the gate judges candidates on the thresholded
// map's IoU with FP32, and the daemon leaves FP32 for an INT8 calibration from live samples.
import { afterAll, describe, expect, it } from 'vitest';
import { digitPages } from '../../scripts/lib/digit-pages.js';
import { startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { paths } from '../helpers/paths.js';
import { calibrations } from '../helpers/serve.js';

const SIDE = 320;
let daemon: Daemon | undefined;
afterAll(async () => {
  await daemon?.stop();
});

async function inferPage(d: Daemon, data: Float32Array): Promise<{ status: number; version: string }> {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3, SIDE, SIDE], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }] }));
  const res = await fetch(d.url('/v2/models/ch_PP-OCRv4_det_infer/infer'), {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]),
  });
  const body = await res.text();
  let version = '';
  try {
    version = String(JSON.parse(body.slice(0, Number(res.headers.get('inference-header-content-length') ?? body.length))).model_version ?? '');
  } catch {
    // binary reply without a JSON header length: the version stays unknown
  }
  return { status: res.status, version };
}

describe('calibd serve: a model with dynamic input dimensions at first boot', () => {
  it('serves FP32 with the default data-free first boot and no inputShapes, and says why once', async () => {
    const d = await startDaemon({ config: { model: paths.ocrDetector } });
    try {
      expect((await d.status()).serving).toBe('fp32');
      const page = digitPages({ count: 1, seed: 3, split: 'test', size: SIDE });
      expect((await inferPage(d, page.data)).status).toBe(200);
      expect(d.logs.filter((l) => /dynamic input dimensions/.test(l))).toHaveLength(1);
    } finally {
      await d.stop();
    }
  }, 120_000);

  it('runs the data-free bootstrap on the configured inputShapes', async () => {
    const d = await startDaemon({ config: { model: paths.ocrDetector, inputShapes: { x: [1, 3, 64, 64] } } });
    try {
      const s = await d.status();
      expect(s.serving).toBe('int8');
      expect(s.calibration.version).toBe(1);
      const page = digitPages({ count: 1, seed: 3, split: 'test', size: SIDE });
      expect((await inferPage(d, page.data)).status).toBe(200);
    } finally {
      await d.stop();
    }
  }, 120_000);
});

describe('calibd serve: the PaddleOCR detector with a mask-IoU gate', () => {
  it('accepts an INT8 calibration from live pages and serves it', async () => {
    daemon = await startDaemon({
      config: {
        model: paths.ocrDetector,
        firstBoot: 'fp32',
        sampling: { oneIn: 1, maxRows: 500 },
        recalibration: { everyInferences: 0, method: 'mse', minSamples: 24, validationSlice: 40, driftThreshold: 0.2, forgetting: 0.98 },
        validation: { metric: 'mask-iou:0.3' },
      },
    });
    const d = daemon;
    expect((await d.status()).serving).toBe('fp32');
    const pages = digitPages({ count: 48, seed: 11, split: 'train', size: SIDE });
    const per = 3 * SIDE * SIDE;
    for (let i = 0; i < 48; i++) {
      const r = await inferPage(d, pages.data.subarray(i * per, (i + 1) * per));
      expect(r.status).toBe(200);
    }
    const s = await waitFor('first detector calibration', async () => {
      const st = await d.status();
      return st.calibration.version > 0 && !st.calibration.running ? st : undefined;
    }, 100_000).catch(async (e) => { console.log('STATUS', JSON.stringify(await d.status()).slice(0, 1500)); console.log('CALS', JSON.stringify(await calibrations(d)).slice(0, 1500)); console.log('LOGS', d.logs.filter((l) => /calibration|error|warn/.test(l)).slice(-8).join('\n')); throw e; });
    const list = await calibrations(d);
    const first = list.find((c) => c.version === s.calibration.version);
    console.log(`detector: v${first.version} ${first.state}, ${first.figures.reason}; SQNR ${first.figures.sqnrDb} dB on ${first.figures.validationSamples} held-out pages`);
    expect(s.serving).toBe('int8');
    expect(first.state).toBe('active');
    expect(first.figures.reason).toMatch(/^mask-iou:0\.3 /);
    expect(first.figures.metricValue).toBeGreaterThanOrEqual(0.95);
    const after = await inferPage(d, pages.data.subarray(0, per));
    expect(after.status).toBe(200);
  }, 240_000);
});

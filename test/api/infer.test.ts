// KServe v2 routes against a real server and engine: metadata, JSON and binary inference,
// every 4xx case with its status and text, the sampling hook and the metrics endpoint.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CalibdError, StateError } from '../../src/common/index.js';
import { WorkerError } from '../../src/agent/index.js';
import { Registry, Counter } from 'prom-client';
import { directRun, inferBody, binaryRequest, modelA, postJson, startServer, PIXELS, type Started } from './helpers.js';

describe('KServe v2 API', () => {
  let s: Started;
  const seen: { inputs: Record<string, { shape: number[]; data: Float32Array }>; outputs: Record<string, { shape: number[]; data: Float32Array }> }[] = [];
  const daemonMetrics = new Registry();
  new Counter({ name: 'calibd_samples_stored_total', help: 'test counter from the daemon', registers: [daemonMetrics] }).inc(3);

  beforeAll(async () => {
    s = await startServer({}, { onInference: (inputs, outputs) => seen.push({ inputs, outputs }), metrics: daemonMetrics });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('answers health and server metadata', async () => {
    expect((await fetch(`${s.base}/v2/health/live`)).status).toBe(200);
    expect(await (await fetch(`${s.base}/v2/health/ready`)).json()).toEqual({ ready: true });
    const meta = await (await fetch(`${s.base}/v2`)).json();
    expect(meta).toMatchObject({ name: 'calibd', extensions: ['binary_tensor_data'] });
    expect(typeof meta.version).toBe('string');
  });

  it('describes the model with -1 for dynamic dims', async () => {
    const res = await fetch(`${s.base}/v2/models/mnist`);
    expect(await res.json()).toEqual({
      name: 'mnist',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
    });
    expect((await fetch(`${s.base}/v2/models/mnist/ready`)).status).toBe(200);
    expect((await fetch(`${s.base}/v2/models/mnist/versions/1`)).status).toBe(200);
  });

  it('JSON inference equals a direct ORT run and echoes the id', async () => {
    const { data, body } = inferBody(2, 21, 'req-7');
    const res = await postJson(`${s.base}/v2/models/mnist/infer`, body);
    expect(res.status).toBe(200);
    expect(res.body.model_name).toBe('mnist');
    expect(res.body.model_version).toBe('1');
    expect(res.body.id).toBe('req-7');
    expect(res.body.outputs).toHaveLength(1);
    expect(res.body.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [2, 10] });
    expect(res.body.outputs[0].data).toEqual(await directRun(modelA, data, 2));
  });

  it('accepts nested data arrays and the versioned infer route', async () => {
    const { data, body } = inferBody(1, 22);
    const nested = [[Array.from({ length: 28 }, (_, r) => Array.from(data.subarray(r * 28, r * 28 + 28)))]];
    body.inputs[0].data = nested as unknown as number[];
    const res = await postJson(`${s.base}/v2/models/mnist/versions/1/infer`, body);
    expect(res.status).toBe(200);
    expect(res.body.outputs[0].data).toEqual(await directRun(modelA, data, 1));
  });

  it('binary inputs give the same answer as JSON, and binary outputs carry the same bytes', async () => {
    const { data, body } = inferBody(3, 23);
    const json = await postJson(`${s.base}/v2/models/mnist/infer`, body);
    const header = { inputs: [{ name: 'input', shape: [3, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }] };
    const bin = binaryRequest(header, [data]);
    const res = await fetch(`${s.base}/v2/models/mnist/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(bin.headerLength) },
      body: bin.body,
    });
    expect(res.status).toBe(200);
    expect((await res.json()).outputs[0].data).toEqual(json.body.outputs[0].data);

    // Now ask for the output as raw bytes too.
    const binOut = binaryRequest({ ...header, parameters: { binary_data_output: true } }, [data]);
    const res2 = await fetch(`${s.base}/v2/models/mnist/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binOut.headerLength) },
      body: binOut.body,
    });
    expect(res2.status).toBe(200);
    expect(res2.headers.get('content-type')).toBe('application/octet-stream');
    const n = Number(res2.headers.get('inference-header-content-length'));
    const raw = Buffer.from(await res2.arrayBuffer());
    const head = JSON.parse(raw.subarray(0, n).toString('utf8'));
    expect(head.outputs[0]).toEqual({ name: 'logits', datatype: 'FP32', shape: [3, 10], parameters: { binary_data_size: 120 } });
    const tail = raw.subarray(n);
    const values = Array.from({ length: 30 }, (_, i) => tail.readFloatLE(i * 4));
    expect(values).toEqual(json.body.outputs[0].data);
  });

  it('hands the validated inputs and outputs to onInference', async () => {
    const { data, body } = inferBody(1, 24);
    const res = await postJson(`${s.base}/v2/models/mnist/infer`, body);
    // The hook runs after the response, so earlier requests' calls may still be arriving.
    const mine = () => seen.find((e) => e.inputs.input.data[0] === data[0] && e.inputs.input.data[PIXELS - 1] === data[PIXELS - 1]);
    await vi.waitFor(() => expect(mine()).toBeDefined());
    const call = mine()!;
    expect(call.inputs.input.shape).toEqual([1, 1, 28, 28]);
    expect(Array.from(call.inputs.input.data)).toEqual(Array.from(data));
    expect(call.outputs.logits.shape).toEqual([1, 10]);
    expect(Array.from(call.outputs.logits.data)).toEqual(res.body.outputs[0].data);
  });

  const infer = (body: unknown) => postJson(`${s.base}/v2/models/mnist/infer`, body);
  const input = (over: Record<string, unknown>) => ({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(PIXELS).fill(0), ...over }] });
  type Call = () => Promise<{ status: number; body: { error: string; code: string } }>;
  const cases: [string, Call, number, string, RegExp][] = [
    ['unknown model', () => postJson(`${s.base}/v2/models/other/infer`, input({})), 404, 'unknown-model', /unknown model 'other'/],
    ['inactive version', () => postJson(`${s.base}/v2/models/mnist/versions/9/infer`, input({})), 404, 'unknown-model', /no version '9'/],
    ['unknown route', async () => { const r = await fetch(`${s.base}/v3/nothing`); return { status: r.status, body: await r.json() }; }, 404, 'no-route', /no route GET \/v3\/nothing/],
    ['bad JSON', async () => {
      const r = await fetch(`${s.base}/v2/models/mnist/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs": [' });
      return { status: r.status, body: await r.json() };
    }, 400, 'invalid-json', /not valid JSON/],
    ['no inputs', () => infer({}), 400, 'invalid-request', /no "inputs" array/],
    ['unknown input', () => infer({ inputs: [...input({}).inputs, { name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }), 400, 'request', /unknown input 'x'/],
    ['unknown input whose name breaks the line', () => infer({ inputs: [...input({}).inputs, { name: 'x\ny', shape: [1], datatype: 'FP32', data: [1] }] }), 400, 'request', /^unknown input 'x\\u000ay'/],
    ['wrong datatype', () => infer(input({ datatype: 'INT64' })), 400, 'request', /datatype INT64, expected FP32/],
    ['wrong shape', () => infer(input({ shape: [1, 28, 28] })), 400, 'request', /rank 3, expected 4/],
    ['wrong fixed dim', () => infer(input({ shape: [1, 3, 28, 28] })), 400, 'request', /dim 1 = 3, expected 1/],
    ['wrong data length', () => infer(input({ data: [1, 2, 3] })), 400, 'shape-mismatch', /3 values, shape \[1,1,28,28\] needs 784/],
    ['ragged nested data of the right count', () => infer(input({ data: [[Array.from({ length: 28 }, (_, row) => Array(row === 0 ? 29 : row === 1 ? 27 : 28).fill(0))]] })), 400, 'shape-mismatch', /data\[0\]\[0\]\[0\] has more than the 28 items/],
    ['non-number data', () => infer(input({ data: ['a'] })), 400, 'invalid-request', /holds "a", not a number/],
    ['an infinite value in JSON data (1e999)', async () => {
      const r = await fetch(`${s.base}/v2/models/mnist/infer`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: `{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[${Array(PIXELS).fill(0).map((v, i) => (i === 100 ? '1e999' : v)).join(',')}]}]}`,
      });
      return { status: r.status, body: await r.json() };
    }, 400, 'non-finite', /input 'input' value 100 \(at \[0,0,3,16\]\) is 1e999, not a finite FP32 number/],
    ['NaN in binary data', async () => {
      const bin = binaryRequest({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 4 * PIXELS } }] }, [new Float32Array(PIXELS).fill(NaN)]);
      const r = await fetch(`${s.base}/v2/models/mnist/infer`, {
        method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(bin.headerLength) }, body: bin.body,
      });
      return { status: r.status, body: await r.json() };
    }, 400, 'non-finite', /input 'input' value 0 \(at \[0,0,0,0\]\) is NaN/],
    ['batch over the limit', () => infer(input({ shape: [17, 1, 28, 28], data: Array(17 * PIXELS).fill(0) })), 400, 'request', /batch 17, more than the limit 16/],
    ['unknown output', () => infer({ ...input({}), outputs: [{ name: 'probs' }] }), 400, 'request', /unknown output 'probs'/],
    ['oversize body', () => infer(input({ data: Array(300_000).fill(0.5) })), 413, 'body-too-large', /larger than http.maxBodyBytes/],
    ['unsupported content type', async () => {
      const r = await fetch(`${s.base}/v2/models/mnist/infer`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
      return { status: r.status, body: await r.json() };
    }, 415, 'unsupported-media-type', /unsupported content type/],
    ['binary body without its header length', async () => {
      const r = await fetch(`${s.base}/v2/models/mnist/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(16) });
      return { status: r.status, body: await r.json() };
    }, 400, 'invalid-binary-header', /needs the Inference-Header-Content-Length/],
    ['a hexadecimal header length', async () => {
      const bin = binaryRequest({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 4 * PIXELS } }] }, [new Float32Array(PIXELS)]);
      const r = await fetch(`${s.base}/v2/models/mnist/infer`, {
        method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': `0x${bin.headerLength.toString(16)}` }, body: bin.body,
      });
      return { status: r.status, body: await r.json() };
    }, 400, 'invalid-binary-header', /Inference-Header-Content-Length '0x[0-9a-f]+' is not a decimal byte count: send .* as decimal digits/],
    ['binary size beyond the body', async () => {
      const bin = binaryRequest({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 4 * PIXELS } }] }, [new Float32Array(10)]);
      const r = await fetch(`${s.base}/v2/models/mnist/infer`, {
        method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(bin.headerLength) }, body: bin.body,
      });
      return { status: r.status, body: await r.json() };
    }, 400, 'binary-size', /declares 3136 binary bytes but only 40 follow/],
  ];
  it.each(cases.map(([name, call, status, code, message]) => ({ name, call, status, code, message })))('$name → $status $code with an {error, code} body, never reaching ORT', async ({ call, status, code, message }) => {
    const before = s.engine.stats();
    const res = await call();
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: expect.stringMatching(message), code });
    expect(s.engine.stats()).toEqual(before);
  });

  it('echoes the request id in error bodies, from the engine and from decoding', async () => {
    const res = await infer({ id: 'abc', ...input({ shape: [1, 1, 28] }) });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: expect.stringMatching(/rank 3/), code: 'request', id: 'abc' });
    const undecodable = await infer({ id: 'def', ...input({ data: [1, 2, 3] }) });
    expect(undecodable.body).toEqual({ error: expect.stringMatching(/3 values, shape \[1,1,28,28\] needs 784/), code: 'shape-mismatch', id: 'def' });
  });

  it('serves admin routes; agent errors get the catalogue\'s status: the caller\'s 4xx, calibd\'s own 5xx', async () => {
    // No socket needed: Fastify's inject runs the same routes, hooks and error handler.
    const admin = async (method: 'GET' | 'POST', url: string, payload?: object) => {
      const res = await s.server.app.inject({ method, url, ...(payload ? { payload } : {}) });
      return { status: res.statusCode, body: res.json() };
    };
    const rec = await admin('POST', '/v2/calibd/recalibrate', { method: 'entropy', full: true });
    expect(rec.status).toBe(200);
    expect(rec.body).toEqual({ version: 2, state: 'accepted', figures: { agreement: 1 } });
    expect(s.admin.calls.at(-1)).toEqual({ op: 'recalibrate', req: { method: 'entropy', full: true } });

    expect((await admin('POST', '/v2/calibd/recalibrate', { full: 'yes' })).status).toBe(400);
    const callsBefore = s.admin.calls.length;
    // Unknown fields are refused as over MQTT, naming the field, and the agent is not called.
    const misspelt = await admin('POST', '/v2/calibd/recalibrate', { method: 'entropy', fulll: true });
    expect(misspelt).toMatchObject({ status: 400, body: { error: "recalibrate: unknown field 'fulll': allowed: method, full", code: 'option' } });
    const extra = await admin('POST', '/v2/calibd/rollback', { version: 1, force: true });
    expect(extra).toMatchObject({ status: 400, body: { error: "rollback: unknown field 'force': allowed: version", code: 'option' } });
    expect(s.admin.calls.length).toBe(callsBefore);
    const cals = (await admin('GET', '/v2/calibd/calibrations')).body;
    expect(cals.calibrations.map((c: { version: number }) => c.version)).toEqual([1, 2]);
    expect((await admin('GET', '/v2/calibd/status')).body).toEqual({ activeVersion: 1, versions: 2 });

    const ok = await admin('POST', '/v2/calibd/rollback', { version: 1 });
    expect(ok).toMatchObject({ status: 200, body: { version: 1 } });
    const bad = await admin('POST', '/v2/calibd/rollback', { version: 42 });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: expect.stringMatching(/no calibration version 42/), code: 'option' });

    // Failures that are calibd's, not the caller's: 5xx with their own code.
    s.admin.failNext = new WorkerError('calibration worker crashed: out of memory');
    expect(await admin('POST', '/v2/calibd/recalibrate', {})).toMatchObject({ status: 500, body: { code: 'worker' } });
    s.admin.failNext = new StateError('recording the new calibration failed (SQLITE_FULL); nothing was changed');
    expect(await admin('POST', '/v2/calibd/recalibrate', {})).toMatchObject({ status: 500, body: { code: 'state' } });
    s.admin.failNext = new CalibdError('closed', 'calibd is shutting down');
    expect(await admin('POST', '/v2/calibd/recalibrate', {})).toMatchObject({ status: 503, body: { code: 'closed' } });
    s.admin.failNext = new CalibdError('no-samples', 'the sample buffer is empty; nothing to calibrate from');
    expect(await admin('POST', '/v2/calibd/recalibrate', {})).toMatchObject({ status: 409, body: { code: 'no-samples' } });
    s.admin.failNext = new TypeError('disk on fire');
    const boom = await admin('POST', '/v2/calibd/recalibrate', {});
    expect(boom).toEqual(expect.objectContaining({ status: 500, body: { error: 'internal server error', code: 'internal' } }));
  });

  it('exposes request counts, latency, in-flight, version and the daemon registry on /metrics', async () => {
    const { body } = inferBody(1, 25);
    await postJson(`${s.base}/v2/models/mnist/infer`, body);
    const text = await (await fetch(`${s.base}/metrics`)).text();
    expect(text).toMatch(/calibd_http_requests_total\{route="\/v2\/models\/:name\/infer",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/calibd_http_requests_total\{route="\/v2\/models\/:name\/infer",method="POST",status="400"\} \d+/);
    expect(text).toMatch(/calibd_inference_duration_seconds_count \d+/);
    // The 4xx cases above, counted by their codes.
    expect(text).toMatch(/calibd_http_errors_total\{code="invalid-json"\} [1-9]/);
    expect(text).toMatch(/calibd_http_errors_total\{code="request"\} [1-9]/);
    expect(text).toMatch(/calibd_http_errors_total\{code="non-finite"\} 2/);
    expect(text).toMatch(/calibd_inferences_in_flight 0/);
    expect(text).toMatch(/calibd_calibration_version 1/);
    expect(text).toMatch(/calibd_samples_stored_total 3/);
  });
});

describe('readiness', () => {
  it('is 503 once the engine is closed', async () => {
    const s = await startServer();
    await s.engine.close();
    const res = await fetch(`${s.base}/v2/health/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: expect.stringMatching(/^no model is loaded/), code: 'not-ready' });
    const inf = await postJson(`${s.base}/v2/models/mnist/infer`, inferBody(1, 1).body);
    expect(inf.status).toBe(503);
    await s.server.close();
  });
});


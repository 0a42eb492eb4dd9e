// `calibd replay`: sends a folder of samples (images, or .npy tensors) to a running daemon
// over KServe v2, one per request, and reports latency and, with labels, accuracy. It is
// traffic for the tour and a way to seed a new device's buffer with representative data.
// Tensors and images go through the binary extension, so a large tensor is not spelt out as
// JSON text. Labels: --labels FILE (.npy in sample order, or .json), else DIR/labels.json
// mapping each file name to its class.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { DataError, OptionError } from '../common/index.js';
import { checkFile, labelsBeside, listSamples, readLabels, readRows, type CheckedFile } from './data.js';

export interface ReplayArgs {
  data: string;
  url: string;
  modelName?: string;
  rate?: number;
  count?: number;
  loop?: boolean;
  labels?: string;
}

/** One request's worth: a sample's body and its label, if known. */
interface Sample {
  name: string;
  body: () => { json: Buffer; binary: Buffer };
}

interface ModelInput {
  name: string;
  datatype: string;
  shape: number[];
}

export async function replayCommand(a: ReplayArgs): Promise<void> {
  const base = baseUrl(a.url);
  const client = new KserveClient(base, process.env.CALIBD_HTTP_TOKEN);
  const model = a.modelName ?? (await client.modelName());
  const input = await client.soleInput(model);
  const listing = listSamples(a.data);
  const samples = listing.kind === 'image' ? imageSamples(listing.files, input) : tensorSamples(listing.files, input);
  const labelFile = a.labels ?? labelsBeside(a.data);
  const labels = labelFile ? readLabels(labelFile, listing.files) : undefined;
  if (labels && labels.length !== samples.length) {
    throw new DataError(`${labelFile} gives ${labels.length} labels for ${samples.length} samples`, { value: labelFile, hint: 'give one label per sample' });
  }
  const total = a.count ?? (a.loop ? Infinity : samples.length);
  if (!a.loop && total > samples.length) {
    throw new OptionError(`--count ${total} is more than the ${samples.length} samples in ${a.data}`, { value: total, hint: 'pass --loop to cycle through them' });
  }

  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  const bar = process.stderr.isTTY ? new SingleBar({ format: 'replay [{bar}] {value}/{total} requests | p50 {p50} ms', clearOnComplete: true }, Presets.shades_classic) : null;
  bar?.start(Number.isFinite(total) ? total : samples.length, 0, { p50: '-' });
  const latencies: number[] = [];
  let correct = 0;
  let labelled = 0;
  let failures = 0;
  let firstFailure = '';
  const started = performance.now();
  try {
    for (let i = 0; i < total && !stop; i++) {
      if (a.rate) await sleepUntil(started + (i * 1000) / a.rate);
      const k = i % samples.length;
      const t0 = performance.now();
      const result = await client.infer(model, samples[k].body());
      latencies.push(performance.now() - t0);
      if ('error' in result) {
        failures++;
        firstFailure ||= `${samples[k].name}: ${result.error}`;
      } else if (labels) {
        labelled++;
        if (result.top1 === labels[k]) correct++;
      }
      if (bar) {
        if (!Number.isFinite(total) && i + 1 >= bar.getTotal()) bar.setTotal(bar.getTotal() + samples.length);
        bar.update(i + 1, { p50: percentile(latencies, 50).toFixed(1) });
      }
    }
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSignal);
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(report({ sent: latencies.length, seconds, latencies, failures, labelled, correct, url: `${base}/v2/models/${model}` }));
  if (failures > 0) {
    throw new DataError(`${failures} of ${latencies.length} requests failed; the first: ${firstFailure}`, { value: failures });
  }
}

function report(r: { sent: number; seconds: number; latencies: number[]; failures: number; labelled: number; correct: number; url: string }): string {
  const lines = [
    `sent ${r.sent} requests to ${r.url} in ${r.seconds.toFixed(1)} s (${(r.sent / Math.max(r.seconds, 1e-9)).toFixed(1)}/s), ${r.failures} failed`,
    `latency p50 ${percentile(r.latencies, 50).toFixed(1)} ms, p95 ${percentile(r.latencies, 95).toFixed(1)} ms (request to response, client side)`,
  ];
  if (r.labelled > 0) lines.push(`accuracy ${((100 * r.correct) / r.labelled).toFixed(2)}% (${r.correct}/${r.labelled} top-1 against labels)`);
  return lines.join('\n') + '\n';
}

/** Nearest-rank percentile of `xs` (ms); 0 for none. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function sleepUntil(t: number): Promise<void> {
  const wait = t - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

function baseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OptionError(`--url '${url}' is not a URL`, { value: url, hint: 'e.g. --url http://127.0.0.1:8080' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OptionError(`--url '${url}' is not http(s)`, { value: url, hint: 'e.g. --url http://127.0.0.1:8080' });
  return u.origin;
}

/** Each image file as one BYTES element, sent as it is through the binary extension. */
function imageSamples(files: string[], input: ModelInput): Sample[] {
  return files.map((file) => ({
    name: basename(file),
    body: () => binaryRequest(input.name, 'BYTES', [1], readFileSync(file)),
  }));
}

/** Each row of each .npy file as one FP32 request of batch 1. */
function tensorSamples(files: string[], input: ModelInput): Sample[] {
  const spec = { name: input.name, sampleDims: input.shape.slice(1) };
  const samples: Sample[] = [];
  for (const f of files) {
    const checked: CheckedFile = checkFile(f, spec);
    for (let row = 0; row < checked.dims[0]; row++) {
      samples.push({
        name: checked.dims[0] === 1 ? basename(f) : `${basename(f)}[${row}]`,
        body: () => {
          const data = readRows(checked, row, 1);
          return binaryRequest(input.name, 'FP32', [1, ...checked.dims.slice(1)], Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        },
      });
    }
  }
  return samples;
}

/** A KServe v2 binary-extension request with one input; outputs come back as JSON. */
function binaryRequest(name: string, datatype: string, shape: number[], bytes: Buffer): { json: Buffer; binary: Buffer } {
  const header = { inputs: [{ name, datatype, shape, parameters: { binary_data_size: bytes.length } }] };
  return { json: Buffer.from(JSON.stringify(header)), binary: bytes };
}

/** The few KServe v2 calls replay makes. */
class KserveClient {
  constructor(
    private readonly base: string,
    private readonly token: string | undefined,
  ) {}

  private async call(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) } });
    } catch (err) {
      // fetch wraps the socket error; with several addresses tried it is an AggregateError.
      const cause = (err as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
      const reason = cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (err as Error).message;
      throw new OptionError(`cannot reach ${this.base} (${reason})`, { value: this.base, hint: 'start the daemon with `calibd serve`, or check --url' });
    }
  }

  /** The served model's name, from the status route. */
  async modelName(): Promise<string> {
    const r = await this.call('/v2/calibd/status');
    if (!r.ok) throw new OptionError(`${this.base}/v2/calibd/status answered ${r.status}, so the model name is unknown`, { value: r.status, hint: 'pass --model-name NAME, or set CALIBD_HTTP_TOKEN for a daemon with a token' });
    const status = (await r.json()) as { model?: { name?: string } };
    if (!status.model?.name) throw new OptionError(`${this.base} did not say which model it serves`, { hint: 'pass --model-name NAME' });
    return status.model.name;
  }

  async soleInput(model: string): Promise<ModelInput> {
    const r = await this.call(`/v2/models/${encodeURIComponent(model)}`);
    if (!r.ok) throw new OptionError(`${this.base} does not serve model '${model}' (HTTP ${r.status})`, { value: model, hint: 'check --model-name' });
    const meta = (await r.json()) as { inputs: ModelInput[] };
    if (meta.inputs.length !== 1) {
      throw new OptionError(`model '${model}' has ${meta.inputs.length} inputs; replay sends one`, { value: model, hint: 'replay serves single-input models' });
    }
    return meta.inputs[0];
  }

  /** One inference: the top-1 class of the first output, or the daemon's error. */
  async infer(model: string, body: { json: Buffer; binary: Buffer }): Promise<{ top1: number } | { error: string }> {
    const r = await this.call(`/v2/models/${encodeURIComponent(model)}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(body.json.length) },
      body: Buffer.concat([body.json, body.binary]),
    });
    const answer = (await r.json()) as { error?: string; outputs?: { data: number[] }[] };
    if (!r.ok || !answer.outputs) return { error: answer.error ?? `HTTP ${r.status}` };
    return { top1: argmax(answer.outputs[0].data) };
  }
}

function argmax(xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

// Shared pieces for the API tests: a small but real AdminControl that keeps a version list,
// a started server on an ephemeral loopback port, and a KServe request builder.
import { OptionError } from '../../src/common/index.js';
import { httpSchema } from '../../src/config/index.js';
import { serializeModel } from '../../src/onnx/index.js';
import { createApiServer, type AdminControl, type ApiDeps, type ApiOptions, type ApiServer } from '../../src/api/index.js';
import { InferenceEngine, createSession, ort } from '../../src/runtime/index.js';
import { randomInputs, smallCnn } from '../helpers/models.js';

export const PIXELS = 28 * 28;
export const modelA = serializeModel(smallCnn(13, 1));
export const modelB = serializeModel(smallCnn(13, 2));

/** The agent's refusal of a version it does not have. */
function unknownVersion(version: number): OptionError {
  return new OptionError(`no calibration version ${version}`, { value: version, hint: 'GET /v2/calibd/calibrations lists them' });
}

/** Keeps calibration versions in memory and swaps the engine on rollback, as the agent would. */
export class VersionListAdmin implements AdminControl {
  readonly calls: { op: string; req: unknown }[] = [];
  private readonly versions = [{ version: 1, method: 'fp32' }];
  failNext: Error | undefined;

  constructor(private readonly engine: InferenceEngine) {}

  status() {
    return { activeVersion: this.engine.activeVersion, versions: this.versions.length };
  }

  async recalibrate(req: { method?: string; full?: boolean }) {
    this.calls.push({ op: 'recalibrate', req });
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const version = this.versions.length + 1;
    this.versions.push({ version, method: req.method ?? 'minmax' });
    return { version, state: 'accepted' as const, figures: { agreement: 1 } };
  }

  async rollback(req: { version?: number }) {
    this.calls.push({ op: 'rollback', req });
    const target = req.version ?? this.versions.length - 1;
    if (!this.versions.some((v) => v.version === target)) throw unknownVersion(target);
    return { version: target };
  }

  calibrations() {
    return this.versions;
  }
}

export interface Started {
  server: ApiServer;
  base: string;
  engine: InferenceEngine;
  admin: VersionListAdmin;
  stop(): Promise<void>;
}

export async function startServer(
  opts: Partial<ApiOptions> = {},
  extra: Partial<Omit<ApiDeps, 'engine' | 'admin'>> = {},
): Promise<Started> {
  const engine = await InferenceEngine.create(modelA, { name: 'mnist', version: 1, maxBatch: 16 });
  const admin = new VersionListAdmin(engine);
  const server = createApiServer({ engine, admin, modelName: 'mnist', ...extra }, apiOptions({ maxBodyBytes: 1024 * 1024, ...opts }));
  const { port } = await server.listen();
  return {
    server,
    base: `http://127.0.0.1:${port}`,
    engine,
    admin,
    async stop() {
      await server.close();
      await engine.close();
    },
  };
}

/** The config's http defaults on an ephemeral loopback port, with `over` on top. */
export function apiOptions(over: Partial<ApiOptions> = {}): ApiOptions {
  return { ...httpSchema.parse({ port: 0 }), ...over };
}

export function inferBody(batch: number, seed: number, id?: string) {
  const data = randomInputs(batch, PIXELS, seed);
  return {
    data,
    body: { ...(id ? { id } : {}), inputs: [{ name: 'input', shape: [batch, 1, 28, 28], datatype: 'FP32', data: Array.from(data) }] },
  };
}

export async function directRun(model: Uint8Array, data: Float32Array, batch: number): Promise<number[]> {
  const session = await createSession(model);
  try {
    const out = await session.run({ input: new ort.Tensor('float32', data, [batch, 1, 28, 28]) });
    return Array.from(out.logits.data as Float32Array);
  } finally {
    await session.release();
  }
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** Builds a binary-extension body: JSON header, then the raw float32 bytes of each input. */
export function binaryRequest(header: unknown, tensors: Float32Array[]): { body: Uint8Array<ArrayBuffer>; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const raw = tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength));
  // A plain Uint8Array copy: fetch's BodyInit type does not take a pooled Buffer.
  return { body: new Uint8Array(Buffer.concat([json, ...raw])), headerLength: json.length };
}

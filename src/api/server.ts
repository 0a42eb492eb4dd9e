// The HTTP server: KServe v2 inference and metadata routes, calibd's admin routes and
// Prometheus metrics. Inference stays open; admin and metrics need the bearer token when one
// is configured, and without one the server only binds to loopback.

import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { createServer, isIP } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CalibdError, calibdVersion, httpStatusOf } from '../common/index.js';
import { printable } from '../common/errors.js';
import { RequestError, type InferOutput, type TensorMeta } from '../runtime/index.js';
import { runCommand, type CommandName } from '../agent/commands.js';
import { HttpError, InsecureBindError, PortInUseError } from './errors.js';
import { createApiMetrics, type ApiMetrics } from './metrics.js';
import { RawBody, readBody } from './body.js';
import { readJson } from './json-reader.js';
import { BINARY_HEADER, binaryData, decodeInferRequest, isObject, jsonData, readInferEnvelope } from './protocol.js';
import { decodeImages } from './image-inputs.js';
import type { AdminControl, ApiDeps, ApiOptions } from './types.js';

export interface ApiServer {
  app: FastifyInstance;
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Refuses a bind beyond loopback without a token; the daemon calls it before any work. */
export function assertSafeBind(host: string, token: string | undefined): void {
  if (!token && !isLoopback(host)) throw new InsecureBindError(host);
}

/**
 * Refuses a port another process holds. The daemon calls it before any work, so a taken
 * port costs no calibration and writes no `started` event; listen() refuses the same way
 * should the port be taken in between.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(host, port, err) : err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

export function createApiServer(deps: ApiDeps, opts: ApiOptions): ApiServer {
  assertSafeBind(opts.host, opts.token);
  const { engine, modelName } = deps;
  const metrics = createApiMetrics(engine);
  const app = Fastify({
    // Slow clients must not hold connections: Node answers a request that is still arriving
    // after requestTimeoutMs (headers within the same bound) through clientErrorHandler.
    requestTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    http: { requestTimeout: opts.requestTimeoutMs, connectionsCheckingInterval: timeoutCheckInterval(opts.requestTimeoutMs) },
    clientErrorHandler: answerClientError(metrics, opts.requestTimeoutMs),
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // Fastify's own two info lines per request would flood a device's journal (2,500
    // inferences made 5,047 lines); one debug line per request is written below instead.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.server.maxConnections = opts.maxConnections;
  // The KServe id of each request, kept so error bodies can echo it too.
  const requestIds = new WeakMap<FastifyRequest, string>();

  // Only JSON and raw bytes are accepted (text/plain would otherwise reach the routes as a
  // string). Both parsers hand over bytes, which each route decodes with bounded readers:
  // JSON.parse would build the whole object graph of a hostile body before anything could
  // refuse it.
  app.removeAllContentTypeParsers();
  for (const [type, octetStream] of [['application/json', false], ['application/octet-stream', true]] as const) {
    app.addContentTypeParser(type, (req: FastifyRequest, payload: Readable) => readBody(payload, req.headers, { maxBodyBytes: opts.maxBodyBytes, octetStream }));
  }

  // Every failure leaves as {error, code, id?}, and is counted by its code. A request whose
  // connection is already gone (cut off by a timeout, which counts itself) has no one to tell.
  const sendFailure = (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    if (req.raw.socket?.destroyed) return reply;
    const failure = describeFailure(err, req.headers['content-type']);
    if (failure.status >= 500) req.log.error({ err }, 'request failed');
    metrics.errors.inc({ code: failure.code });
    const body: { error: string; code: string; id?: string } = { error: failure.message, code: failure.code };
    const id = requestIds.get(req);
    if (id !== undefined) body.id = id;
    return reply.code(failure.status).type('application/json').send(body);
  };
  app.setErrorHandler((err: FastifyError | Error, req, reply) => sendFailure(err, req, reply));
  app.setNotFoundHandler((req, reply) => {
    return sendFailure(new HttpError('no-route', `no route ${req.method} ${printable(req.url.split('?')[0])}`, { hint: 'see GET /v2 and the KServe v2 routes' }), req, reply);
  });

  // A body refused while it arrived (too deep) is answered once its request reaches a route.
  app.addHook('preHandler', async (req) => {
    if (req.body instanceof RawBody && req.body.refusal) throw req.body.refusal;
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.statusCode) });
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });

  const checkModel = (params: { name: string; version?: string }) => {
    if (params.name !== modelName) {
      throw new HttpError('unknown-model', `unknown model '${params.name}'`, { value: params.name, hint: `this server serves '${modelName}'` });
    }
    if (params.version !== undefined && params.version !== String(engine.activeVersion)) {
      throw new HttpError('unknown-model', `model '${modelName}' has no version '${params.version}' being served`, {
        value: params.version,
        hint: `the active version is ${engine.activeVersion}; or leave the version out of the path`,
      });
    }
  };
  const wireMeta = (m: TensorMeta) => ({ name: m.name, datatype: m.datatype, shape: m.dims.map((d) => d ?? -1) });

  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async () => {
    if (!engine.ready) throw new HttpError('not-ready', 'no model is loaded', { hint: 'wait for start-up to finish' });
    return { ready: true };
  });
  app.get('/v2', async () => ({ name: 'calibd', version: calibdVersion(), extensions: ['binary_tensor_data'] }));

  type ModelParams = { name: string; version?: string };
  const modelMetadata = async (req: FastifyRequest<{ Params: ModelParams }>) => {
    checkModel(req.params);
    return {
      name: modelName,
      versions: engine.activeVersion === undefined ? [] : [String(engine.activeVersion)],
      platform: 'onnxruntime_onnx',
      inputs: engine.inputsMeta.map(wireMeta),
      outputs: engine.outputsMeta.map(wireMeta),
    };
  };
  const modelReady = async (req: FastifyRequest<{ Params: ModelParams }>) => {
    checkModel(req.params);
    if (!engine.ready) throw new HttpError('not-ready', `model '${modelName}' is not ready`, { value: modelName, hint: 'wait for start-up to finish' });
    return { name: modelName, ready: true };
  };
  const infer = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    checkModel(req.params);
    const body = req.body instanceof RawBody ? req.body : new RawBody(Buffer.alloc(0), false);
    const headerLength = req.headers[BINARY_HEADER];
    const envelope = readInferEnvelope({ bytes: body.bytes, octetStream: body.octetStream, headerLength: Array.isArray(headerLength) ? headerLength[0] : headerLength });
    if (envelope.id !== undefined) requestIds.set(req, envelope.id);
    const decoded = decodeInferRequest(envelope, (declared) => engine.checkDeclared(declared), deps.preprocess);
    if (decoded.images.length > 0) await decodeImages(decoded.images, decoded.inputs, deps.preprocess!);
    const wanted = decoded.outputs ?? engine.outputsMeta.map((m) => ({ name: m.name, binary: decoded.binaryOutputs }));
    for (const o of wanted) {
      if (!engine.outputsMeta.some((m) => m.name === o.name)) {
        throw new RequestError(`unknown output '${printable(o.name)}'`, { value: o.name, hint: `the model's outputs are: ${engine.outputsMeta.map((m) => m.name).join(', ')}` });
      }
    }
    const result = await engine.infer(decoded.inputs);
    metrics.inferenceSeconds.observe(result.latencyMs / 1000);
    if (deps.onInference) notify(deps.onInference, decoded.inputs, result.outputs, result.latencyMs, req);
    return sendOutputs(reply, { modelName, version: result.version, id: decoded.id, wanted, outputs: result.outputs });
  };
  for (const prefix of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(prefix, modelMetadata);
    app.get(`${prefix}/ready`, modelReady);
    app.post(`${prefix}/infer`, infer);
  }

  // Admin routes and metrics live in their own scope so the token hook covers only them.
  app.register(async (admin) => {
    if (opts.token) admin.addHook('onRequest', bearerCheck(opts.token));
    registerAdminRoutes(admin, deps.admin);
    admin.get('/metrics', async (_req, reply) => {
      // Concatenated rather than merged: a daemon metric that shares a name with ours must
      // not take the whole scrape down.
      const own = await metrics.registry.metrics();
      const extra = deps.metrics ? await deps.metrics.metrics() : '';
      return reply.type(metrics.registry.contentType).send(extra ? `${own}\n${extra}` : own);
    });
  });

  return {
    app,
    async listen() {
      try {
        await app.listen({ host: opts.host, port: opts.port });
      } catch (err) {
        throw (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? new PortInUseError(opts.host, opts.port, err) : err;
      }
      const address = app.server.address();
      return { port: typeof address === 'object' && address ? address.port : opts.port };
    },
    async close() {
      await app.close();
    },
  };
}

/**
 * The admin commands HTTP serves, by route; the rest (config, buffer) are MQTT only. Each is
 * checked and run by the command table (agent/commands.ts), as over MQTT, so both answer the
 * same bad arguments with the same code, and the status comes from the error catalogue.
 */
const ADMIN_ROUTES: readonly { command: CommandName & keyof AdminControl; method: 'GET' | 'POST'; url: string }[] = [
  { command: 'status', method: 'GET', url: '/v2/calibd/status' },
  { command: 'calibrations', method: 'GET', url: '/v2/calibd/calibrations' },
  { command: 'recalibrate', method: 'POST', url: '/v2/calibd/recalibrate' },
  { command: 'rollback', method: 'POST', url: '/v2/calibd/rollback' },
];

function registerAdminRoutes(app: FastifyInstance, admin: AdminControl): void {
  for (const { command, method, url } of ADMIN_ROUTES) {
    app.route({ method, url, handler: async (req) => runCommand(command, admin, method === 'POST' ? adminBody(req.body) : {}) });
  }
}

function adminBody(body: unknown): Record<string, unknown> {
  if (!(body instanceof RawBody) || body.bytes.length === 0) return {};
  if (body.octetStream) throw new HttpError('unsupported-media-type', 'admin routes take JSON, not application/octet-stream', { hint: 'send application/json' });
  const value = readJson(body.bytes);
  if (value === null) return {};
  if (!isObject(value)) throw new HttpError('invalid-request', 'the body must be a JSON object', { hint: 'send {} or the route\'s fields' });
  return value;
}

function bearerCheck(token: string) {
  // Hashing both sides gives equal lengths, so the comparison time says nothing about the token.
  const expected = createHash('sha256').update(token).digest();
  return async (req: FastifyRequest) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = createHash('sha256').update(match ? match[1].trim() : '').digest();
    if (!match || !timingSafeEqual(given, expected)) {
      throw new HttpError('unauthorized', 'this route needs "Authorization: Bearer <token>"', { hint: 'send the token set as http.token' });
    }
  };
}

function notify(
  hook: NonNullable<ApiDeps['onInference']>,
  inputs: Record<string, { shape: number[]; data: Float32Array }>,
  outputs: Record<string, InferOutput>,
  latencyMs: number,
  req: FastifyRequest,
): void {
  const floatOutputs: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, o] of Object.entries(outputs)) if (o.data instanceof Float32Array) floatOutputs[name] = { shape: o.shape, data: o.data };
  // After the response is on its way: sampling must never delay or fail a request.
  setImmediate(() => {
    try {
      hook(inputs, floatOutputs, latencyMs);
    } catch (err) {
      req.log.warn({ err }, 'onInference hook failed');
    }
  });
}

function sendOutputs(
  reply: FastifyReply,
  r: { modelName: string; version: number; id?: string; wanted: { name: string; binary: boolean }[]; outputs: Record<string, InferOutput> },
) {
  const chunks: Buffer[] = [];
  const outputs = r.wanted.map(({ name, binary }) => {
    const o = r.outputs[name];
    if (!binary) return { name, datatype: o.datatype, shape: o.shape, data: jsonData(o.data) };
    const bytes = binaryData(o);
    chunks.push(bytes);
    return { name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: bytes.length } };
  });
  const body = { model_name: r.modelName, model_version: String(r.version), ...(r.id !== undefined ? { id: r.id } : {}), outputs };
  if (chunks.length === 0) return reply.send(body);
  const header = Buffer.from(JSON.stringify(body), 'utf8');
  return reply
    .header('Inference-Header-Content-Length', String(header.length))
    .type('application/octet-stream')
    .send(Buffer.concat([header, ...chunks]));
}

/**
 * How often Node looks for requests past their timeout (its default, 30 s, would let a slow
 * request live up to twice the timeout): a quarter of the timeout, at most once a second.
 */
function timeoutCheckInterval(requestTimeoutMs: number): number {
  return Math.max(10, Math.min(1000, Math.floor(requestTimeoutMs / 4)));
}

/**
 * Answers what Node refuses before Fastify sees a request (a timed-out or malformed one) in
 * the same {error, code} shape as every other failure, counts it, and closes the connection.
 */
function answerClientError(metrics: ApiMetrics, requestTimeoutMs: number) {
  return (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const failure = clientFailure(err, requestTimeoutMs);
    metrics.errors.inc({ code: failure.code });
    const body = JSON.stringify({ error: failure.oneLine(), code: failure.code });
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${failure.status} ${STATUS_CODES[failure.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

function clientFailure(err: Error & { code?: string }, requestTimeoutMs: number): HttpError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new HttpError('request-timeout', `the request did not arrive within http.requestTimeoutMs (${requestTimeoutMs} ms)`, {
      value: requestTimeoutMs,
      hint: 'send the whole request at once, or raise http.requestTimeoutMs for slow links',
    });
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') return new HttpError('headers-too-large', 'the request headers are too large', { hint: 'send fewer or shorter headers' });
  return new HttpError('bad-request', `malformed HTTP request (${err.code ?? err.message})`, { value: err.code, hint: 'send HTTP/1.1' });
}

/** Status, catalogued code and one-line message of any error a request can end in. */
function describeFailure(err: unknown, contentType: string | undefined): { status: number; code: string; message: string } {
  if (err instanceof CalibdError) return { status: httpStatusOf(err.code), code: err.code, message: err.oneLine() };
  const status = (err as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const refusal = frameworkRefusal(err as FastifyError, contentType);
    return { status: refusal.status, code: refusal.code, message: refusal.oneLine() };
  }
  // Unexpected failures are logged in full but not described to the client.
  return { status: 500, code: 'internal', message: 'internal server error' };
}

/** Refusals Fastify makes before a route runs, as catalogued errors. */
function frameworkRefusal(err: FastifyError, contentType: string | undefined): HttpError {
  if (err.statusCode === 415) {
    return new HttpError('unsupported-media-type', `unsupported content type '${contentType ?? ''}'`, {
      value: contentType,
      hint: 'send application/json, or application/octet-stream for the binary tensor extension',
    });
  }
  return new HttpError('bad-request', err.message, { hint: 'check the request line, headers and Content-Length' });
}

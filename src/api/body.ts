// Request bodies as they arrive: bytes counted against http.maxBodyBytes, and JSON nesting
// gauged chunk by chunk, so a body that can only be refused is refused at its first
// kilobytes instead of after megabytes have been buffered. A body that passes is handed to
// the routes whole, as bytes; they decode it with the bounded readers.

import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { HttpError } from './errors.js';
import { JsonDepthGauge } from './json-reader.js';
import { BINARY_HEADER, decimalByteCount } from './protocol.js';

/** A request body as received; routes decode it themselves. */
export class RawBody {
  constructor(
    readonly bytes: Buffer,
    /** Sent as application/octet-stream rather than application/json. */
    readonly octetStream: boolean,
    /** Why the body was refused while it arrived; a hook answers with it before any route runs. */
    readonly refusal?: HttpError,
  ) {}
}

/**
 * Reads one body. A body over the size limit is rejected: Fastify answers 413 and closes the
 * connection, and nothing more is kept. A body refused by its nesting instead resolves early
 * with the refusal: rejecting would close the connection too, and a client still sending
 * would then likely see a reset instead of the 400. The rest of it drains unbuffered, up to
 * the size limit.
 */
export function readBody(payload: Readable, headers: IncomingHttpHeaders, opts: { maxBodyBytes: number; octetStream: boolean }): Promise<RawBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let state: 'reading' | 'draining' | 'rejected' = 'reading';
    const rejectWith = (err: HttpError) => {
      state = 'rejected';
      chunks.length = 0;
      reject(err);
    };
    const gauge = jsonGauge(headers, opts.octetStream);
    payload.on('data', (chunk: Buffer) => {
      if (state === 'rejected') return;
      received += chunk.length;
      if (received > opts.maxBodyBytes) {
        if (state === 'reading') rejectWith(bodyTooLarge(opts.maxBodyBytes));
        // A refused body (chunked) that keeps coming past the limit is not drained forever.
        else payload.destroy();
        return;
      }
      if (state === 'draining') return;
      try {
        gauge.feed(chunk);
        chunks.push(chunk);
      } catch (err) {
        state = 'draining';
        chunks.length = 0;
        resolve(new RawBody(Buffer.alloc(0), opts.octetStream, err as HttpError));
      }
    });
    payload.on('end', () => {
      if (state === 'reading') resolve(new RawBody(Buffer.concat(chunks, received), opts.octetStream));
    });
    // The client went away (or a timeout cut it off) mid-body.
    payload.on('error', (err) => {
      if (state === 'reading') rejectWith(new HttpError('bad-request', 'the request body stopped before it was complete', { cause: err, hint: 'send the whole body' }));
    });
    // A declared length over the limit is refused before a byte is read.
    if (Number(headers['content-length']) > opts.maxBodyBytes) rejectWith(bodyTooLarge(opts.maxBodyBytes));
  });
}

/** Gauges the JSON part: all of a JSON body, the header of a binary one, nothing when unknown. */
function jsonGauge(headers: IncomingHttpHeaders, octetStream: boolean): JsonDepthGauge {
  const headerLength = headers[BINARY_HEADER];
  if (headerLength === undefined) return new JsonDepthGauge('the body', octetStream ? 0 : Infinity);
  // A malformed length is refused once the body is whole; until then there is no JSON part to gauge.
  const n = typeof headerLength === 'string' ? decimalByteCount(headerLength) : undefined;
  return new JsonDepthGauge('the JSON header', n ?? 0);
}

function bodyTooLarge(maxBodyBytes: number): HttpError {
  return new HttpError('body-too-large', `the request body is larger than http.maxBodyBytes (${maxBodyBytes} bytes)`, {
    value: maxBodyBytes,
    hint: 'split the batch, or send tensors with the binary tensor extension (4 bytes per value)',
  });
}

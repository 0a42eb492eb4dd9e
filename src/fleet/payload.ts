// Large answers over MQTT: a response body past COMPRESS_FROM bytes of JSON has its `data`
// deflated (zlib) and sent as base64 text in parts of at most PART_BYTES, each a JSON
// message of its own with the transaction, `part` and `parts`. The operator's client puts
// the parts back together (PartAssembler). Every message stays JSON text, and under the
// smallest limit of common brokers (AWS IoT Core: 128 KB a message; EMQX 1 MB; mosquitto
// and HiveMQ far more), so a 250-tensor model's statistics pass any default set-up.

import { deflateSync, inflateSync } from 'node:zlib';
import { CalibdError } from '../common/errors.js';

/** Response JSON beyond this many bytes is compressed. */
export const COMPRESS_FROM = 16 * 1024;
/** Most base64 characters of compressed data one message carries. */
export const PART_BYTES = 96 * 1024;
/** Most parts one answer may have (a 24 MB compressed answer): a guard, not a target. */
export const MAX_PARTS = 256;
/** Most bytes an answer may inflate to: a broken or hostile answer cannot fill the operator's memory. */
const MAX_INFLATED_BYTES = 512 * 2 ** 20;

export interface ResponseEnvelope {
  status: 'ok' | 'error';
  data: unknown;
  error?: string;
  transaction?: string | number;
}

/** One part of a compressed answer. */
export interface ResponsePart {
  status: 'ok';
  transaction?: string | number;
  encoding: 'deflate-base64';
  part: number;
  parts: number;
  data: string;
}

/** The messages that carry `body`: itself when small, else its compressed parts. */
export function encodeResponse(body: ResponseEnvelope): string[] {
  const text = JSON.stringify(body);
  if (text.length <= COMPRESS_FROM || body.status !== 'ok') return [text];
  const packed = deflateSync(Buffer.from(JSON.stringify(body.data)), { level: 6 }).toString('base64');
  const parts = Math.max(1, Math.ceil(packed.length / PART_BYTES));
  const out: string[] = [];
  for (let i = 0; i < parts; i++) {
    const part: ResponsePart = {
      status: 'ok',
      ...(body.transaction !== undefined ? { transaction: body.transaction } : {}),
      encoding: 'deflate-base64',
      part: i,
      parts,
      data: packed.slice(i * PART_BYTES, (i + 1) * PART_BYTES),
    };
    out.push(JSON.stringify(part));
  }
  return out;
}

function isPart(m: Record<string, unknown>): m is ResponsePart & Record<string, unknown> {
  return m.encoding === 'deflate-base64' && Number.isInteger(m.part) && Number.isInteger(m.parts) && typeof m.data === 'string';
}

/**
 * Collects one device's answer to one request: a plain response completes at once, parts
 * complete when all have arrived (in any order, duplicates ignored).
 */
export class PartAssembler {
  private parts: string[] = [];
  private have = 0;
  /** Bytes of every message received, compressed or not. */
  bytes = 0;

  /** Feeds one message; returns the whole response once complete, else null. */
  add(message: Record<string, unknown>, size: number): ResponseEnvelope | null {
    this.bytes += size;
    if (!isPart(message)) return message as unknown as ResponseEnvelope;
    const { part, parts } = message;
    if (parts < 1 || parts > MAX_PARTS || part < 0 || part >= parts || (this.parts.length && this.parts.length !== parts)) {
      throw new CalibdError('request', `a response part ${part} of ${parts} does not fit the answer`, { value: { part, parts }, hint: 'retry the request' });
    }
    if (this.parts.length === 0) this.parts = new Array<string>(parts);
    if (this.parts[part] === undefined) {
      this.parts[part] = message.data;
      this.have++;
    }
    if (this.have < parts) return null;
    const data = JSON.parse(inflateSync(Buffer.from(this.parts.join(''), 'base64'), { maxOutputLength: MAX_INFLATED_BYTES }).toString('utf8')) as unknown;
    return { status: 'ok', data, ...(message.transaction !== undefined ? { transaction: message.transaction } : {}) };
  }
}

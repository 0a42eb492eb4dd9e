// Decoding one MQTT request payload into its JSON body: bounded size, UTF-8 JSON, an object.
// Pure, so the fuzz harness can throw arbitrary bytes at it; every refusal is a CalibdError
// the member answers on the response topic.

import { CalibdError } from '../common/errors.js';

export const MAX_REQUEST_BYTES = 64 * 1024;

const SEND_AN_OBJECT = 'send a JSON object, e.g. {"transaction":"1"}';

/** Fields any request may carry besides its command's arguments (see signing.ts). */
const ENVELOPE = new Set(['transaction', 'ts', 'sig']);

export interface DecodedRequest {
  /** The whole object, envelope included (signatures cover all of it). */
  body: Record<string, unknown>;
  /** The command's own fields, without the envelope. */
  fields: Record<string, unknown>;
  /** The caller's correlation id, echoed in the response. */
  transaction?: string | number;
}

export function decodeRequest(payload: Uint8Array): DecodedRequest {
  if (payload.length > MAX_REQUEST_BYTES) {
    throw new CalibdError('request', `request is ${payload.length} bytes; the limit is ${MAX_REQUEST_BYTES}`, { value: payload.length, hint: 'keep requests small: they carry arguments, never data' });
  }
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8').trim();
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch (err) {
    throw new CalibdError('invalid-json', `request payload is not valid JSON: ${(err as Error).message}`, { hint: SEND_AN_OBJECT });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CalibdError('invalid-json', 'request payload must be a JSON object', { hint: SEND_AN_OBJECT });
  }
  const body = parsed as Record<string, unknown>;
  const t = body.transaction;
  const fields = Object.fromEntries(Object.entries(body).filter(([k]) => !ENVELOPE.has(k)));
  return { body, fields, ...(typeof t === 'string' || typeof t === 'number' ? { transaction: t } : {}) };
}

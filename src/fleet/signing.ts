// Optional HMAC signing of command payloads. With a shared key configured, a state-changing
// command must carry `ts` (milliseconds since the epoch) and `sig`, the hex HMAC-SHA256 of
//
//     "<target>\n<command>\n" + canonical JSON of the payload without `sig`
//
// where the target is the device id the request topic names, or `fleet` for a fleet-wide
// request, and canonical JSON sorts object keys at every level and has no whitespace. The
// target is signed so a request for one device cannot be republished to another (each
// device keeps its own replay cache); the command so a signed `buffer/clear` cannot be
// replayed as `rollback`. A timestamp outside ±window is refused, and so is a signature
// already seen within the window (replay).

import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return value === undefined ? 'null' : JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** Where a request goes: the device id its topic names (or `fleet`) and the command. */
export interface RequestAddress {
  target: string;
  command: string;
}

export function signatureOf(key: Buffer, to: RequestAddress, payload: Record<string, unknown>): string {
  const { sig: _omit, ...rest } = payload;
  return createHmac('sha256', key).update(`${to.target}\n${to.command}\n${canonicalJson(rest)}`).digest('hex');
}

/** Adds `ts` (now) and `sig` to a payload. */
export function signPayload(key: Buffer, to: RequestAddress, payload: Record<string, unknown>, now = Date.now()): Record<string, unknown> {
  const withTs = { ...payload, ts: now };
  return { ...withTs, sig: signatureOf(key, to, withTs) };
}

/** Reads a key file: its bytes, minus one trailing newline; at least 16 bytes. */
export function readSigningKey(path: string): Buffer {
  const raw = readFileSync(path);
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end--;
  if (end > 0 && raw[end - 1] === 0x0d) end--;
  const key = raw.subarray(0, end);
  if (key.length < 16) throw new RangeError(`signing key in ${path} is ${key.length} bytes; use at least 16 (e.g. openssl rand -hex 32)`);
  return Buffer.from(key);
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

export class SignatureVerifier {
  /** sig → expiry time; only valid signatures enter, so its size follows the legitimate command rate. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly key: Buffer,
    readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  verify(to: RequestAddress, payload: Record<string, unknown>): VerifyResult {
    const { ts, sig } = payload;
    if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) return { ok: false, reason: 'missing or malformed signature (sig)' };
    if (typeof ts !== 'number' || !Number.isFinite(ts)) return { ok: false, reason: 'missing timestamp (ts, milliseconds since the epoch)' };
    const now = this.now();
    if (Math.abs(now - ts) > this.windowMs) return { ok: false, reason: `timestamp outside the ±${Math.round(this.windowMs / 1000)} s window` };
    if (!hasValidSignature(this.key, to, payload)) return { ok: false, reason: 'bad signature' };
    this.expire(now);
    if (this.seen.has(sig)) return { ok: false, reason: 'replayed request (signature already used)' };
    this.seen.set(sig, ts + this.windowMs);
    return { ok: true };
  }

  private expire(now: number): void {
    for (const [s, until] of this.seen) if (until < now) this.seen.delete(s);
  }

  get cacheSize(): number {
    return this.seen.size;
  }
}

/**
 * Whether a retained document (a fleet calibration) carries a valid signature. No time
 * window or replay cache: it is read on any later start, and replaying it only repeats
 * what the fleet's key holder published.
 */
export function hasValidSignature(key: Buffer, to: RequestAddress, payload: Record<string, unknown>): boolean {
  const { sig } = payload;
  if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) return false;
  return timingSafeEqual(Buffer.from(signatureOf(key, to, payload), 'hex'), Buffer.from(sig, 'hex'));
}

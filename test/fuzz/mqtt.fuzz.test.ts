// Fuzzing the MQTT side: the request decoder and the signature check. Whatever arrives on a
// request topic must decode to an object or be refused with a CalibdError, and the verifier
// must answer ok/refused for any payload, never throw; a payload it signed verifies once.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CalibdError } from '../../src/common/index.js';
import { decodeRequest, MAX_REQUEST_BYTES } from '../../src/fleet/request.js';
import { SignatureVerifier, signPayload } from '../../src/fleet/signing.js';
import { FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzRuns } from './settings.js';

const KEY = Buffer.from('fuzzing-signing-key-0123456789abcdef');
const target = fc.record({ target: fc.oneof(fc.constant('fleet'), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)), command: fc.constantFrom('recalibrate', 'rollback', 'config/set', 'buffer/clear', 'status') });

function decodesOrRefuses(bytes: Uint8Array): void {
  try {
    const { body } = decodeRequest(bytes);
    expect(typeof body).toBe('object');
    expect(Array.isArray(body)).toBe(false);
  } catch (err) {
    expect(err).toBeInstanceOf(CalibdError);
  }
}

describe('fuzz: MQTT request decoder', () => {
  it('arbitrary bytes decode to an object or are refused with a CalibdError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), decodesOrRefuses), { seed: FUZZ_SEED, numRuns: fuzzRuns(2000) });
  }, FUZZ_TIMEOUT_MS);

  it('arbitrary JSON values (and their texts cut short) decode or are refused', () => {
    const jsonText = fc.jsonValue().chain((v) => {
      const text = JSON.stringify(v) ?? 'null';
      return fc.integer({ min: 0, max: text.length }).map((cut) => [text, text.slice(0, cut)]);
    });
    fc.assert(
      fc.property(jsonText, ([whole, cut]) => {
        decodesOrRefuses(Buffer.from(whole));
        decodesOrRefuses(Buffer.from(cut));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(2000) },
    );
  }, FUZZ_TIMEOUT_MS);

  it('a payload over the limit is refused before it is parsed', () => {
    const big = Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x5b); // '[' × 64 KiB + 1: deep nesting never reaches JSON.parse
    expect(() => decodeRequest(big)).toThrow(/limit/);
  });
});

describe('fuzz: signature check', () => {
  it('never throws, and refuses anything not signed by the key for this target', () => {
    const now = 1_800_000_000_000;
    fc.assert(
      fc.property(target, fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 6 }), (to, payload) => {
        const v = new SignatureVerifier(KEY, 30_000, () => now);
        const result = v.verify(to, payload);
        // A random payload is valid only by accident of a 256-bit HMAC: never.
        expect(result.ok).toBe(false);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(2000) },
    );
  }, FUZZ_TIMEOUT_MS);

  it('a signed payload verifies once for its target, and a mutated copy never does', () => {
    const now = 1_800_000_000_000;
    const args = fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => !['sig', 'ts', '__proto__'].includes(k)), fc.jsonValue(), { maxKeys: 5 });
    fc.assert(
      fc.property(target, args, fc.string({ minLength: 1, maxLength: 8 }), (to, payload, extra) => {
        const v = new SignatureVerifier(KEY, 30_000, () => now);
        const signed = signPayload(KEY, to, payload, now);
        const tampered = { ...signed, [`x${extra}`]: extra };
        expect(v.verify(to, tampered).ok).toBe(false);
        expect(v.verify({ ...to, target: `${to.target}x` }, signed).ok).toBe(false);
        expect(v.verify(to, signed)).toEqual({ ok: true });
        expect(v.verify(to, signed).ok).toBe(false); // replay
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  }, FUZZ_TIMEOUT_MS);
});

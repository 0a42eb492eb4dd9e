// Fuzzing what users hand calibd as files: the config loader, the .npy reader and the ONNX
// loader. Each must return a value or throw its own typed error (ConfigError, DataError,
// ModelError) with one line to show; nothing else, whatever the bytes. A config error never
// shows a secret, whatever else is wrong around it.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CalibdError, DataError, ModelError, encodeNpy, parseNpy } from '../../src/common/index.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { parseModel } from '../../src/onnx/index.js';
import { createSession } from '../../src/runtime/index.js';
import { paths } from '../helpers/paths.js';
import { FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzRuns } from './settings.js';

const dir = mkdtempSync(join(tmpdir(), 'calibd-fuzz-'));
const SECRET = 'fuzz-secret-token-5f3a9c';

/** Runs `fn`; it may return, or throw an error of `kind` whose message is one line. */
function returnsOrThrows(kind: new (...a: never[]) => CalibdError, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(kind);
    expect((err as Error).message).not.toContain('\n');
  }
}

const sectionKeys = ['model', 'http', 'sampling', 'recalibration', 'validation', 'mqtt', 'log', 'threads', 'inputShapes', 'bogus'];
/** Configs shaped like real ones (known section names) with arbitrary values, plus a token. */
const configLike = fc.dictionary(fc.constantFrom(...sectionKeys), fc.oneof(fc.jsonValue(), fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue(), { maxKeys: 4 })), { maxKeys: 5 });

describe('fuzz: config loader', () => {
  it('arbitrary YAML/JSON text loads or fails with a ConfigError', () => {
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue().map((v) => JSON.stringify(v) ?? ''));
    fc.assert(
      fc.property(text, fc.constantFrom('yaml', 'json'), (body, ext) => {
        const file = join(dir, `c.${ext}`);
        writeFileSync(file, body);
        returnsOrThrows(ConfigError, () => loadConfig({ file, env: {} }));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(500) },
    );
  }, FUZZ_TIMEOUT_MS);

  it('an error never shows the token, whatever else in the config is wrong', () => {
    fc.assert(
      fc.property(configLike, fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 3 }), (config, httpExtra) => {
        const withToken = { ...config, http: { ...httpExtra, token: SECRET } };
        try {
          loadConfig({ overrides: withToken, env: {} });
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          expect((err as Error).message).not.toContain(SECRET);
          expect(JSON.stringify((err as ConfigError).value ?? null)).not.toContain(SECRET);
        }
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  }, FUZZ_TIMEOUT_MS);
});

describe('fuzz: .npy reader', () => {
  const valid = encodeNpy(Float32Array.from({ length: 24 }, (_, i) => i / 7), [2, 3, 4]);
  it('mutated and truncated .npy bytes parse or fail with a DataError', () => {
    const mutation = fc.record({ cut: fc.integer({ min: 0, max: valid.length }), flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }) });
    fc.assert(
      fc.property(mutation, ({ cut, flips }) => {
        const bytes = Uint8Array.from(valid.subarray(0, cut));
        for (const [at, b] of flips) if (bytes.length) bytes[at % bytes.length] = b;
        returnsOrThrows(DataError, () => parseNpy(bytes));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(3000) },
    );
  }, FUZZ_TIMEOUT_MS);

  it('arbitrary header dictionaries behind a valid magic parse or fail with a DataError', () => {
    const header = fc.string({ maxLength: 120 });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 64 }), (h, tail) => {
        const head = Buffer.from(h.padEnd(Math.ceil((h.length + 11) / 64) * 64 - 10, ' ') + '\n', 'latin1');
        const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, head.length & 0xff, head.length >> 8]);
        returnsOrThrows(DataError, () => parseNpy(Buffer.concat([pre, head, tail])));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(2000) },
    );
  }, FUZZ_TIMEOUT_MS);
});

describe('fuzz: ONNX loader', () => {
  const model = readFileSync(paths.mnistModel);
  const mutation = fc.record({ cut: fc.integer({ min: 0, max: model.length }), flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }) });
  const mutate = ({ cut, flips }: { cut: number; flips: [number, number][] }) => {
    const bytes = Uint8Array.from(model.subarray(0, cut));
    for (const [at, b] of flips) if (bytes.length) bytes[at % bytes.length] = b;
    return bytes;
  };

  it('truncated or mutated protobuf parses or fails with a ModelError', () => {
    fc.assert(fc.property(mutation, (m) => returnsOrThrows(ModelError, () => parseModel(mutate(m)))), { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) });
  }, FUZZ_TIMEOUT_MS);

  it('whatever parses either loads into ONNX Runtime or fails with a ModelError, in-process', async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        let parsed;
        try {
          parsed = parseModel(mutate(m));
        } catch {
          return; // covered above
        }
        try {
          const s = await createSession(parsed);
          await s.release();
        } catch (err) {
          expect(err).toBeInstanceOf(ModelError);
        }
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(200) },
    );
  }, FUZZ_TIMEOUT_MS);
});

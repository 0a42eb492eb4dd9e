// Large MQTT answers: compressed and split under the part size, put back together in any
// order, and refused when the parts do not fit together.
import { describe, expect, it } from 'vitest';
import { COMPRESS_FROM, PART_BYTES, PartAssembler, encodeResponse } from '../../src/fleet/payload.js';
import { mulberry32 } from '../../scripts/lib/mnist-data.js';

describe('response parts', () => {
  it('a small answer goes as it is', () => {
    const body = { status: 'ok' as const, data: { a: 1 }, transaction: 't1' };
    const [m] = encodeResponse(body);
    expect(encodeResponse(body)).toHaveLength(1);
    expect(new PartAssembler().add(JSON.parse(m), m.length)).toEqual(body);
  });

  it('a large answer is deflated into parts of at most PART_BYTES and reassembled in any order', () => {
    const rand = mulberry32(3);
    // Random numbers compress poorly, so this needs several parts.
    const data = { counts: Array.from({ length: 60_000 }, () => rand()) };
    const messages = encodeResponse({ status: 'ok', data, transaction: 't2' });
    expect(messages.length).toBeGreaterThan(2);
    for (const m of messages) expect(m.length).toBeLessThan(PART_BYTES + 200);
    const a = new PartAssembler();
    const shuffled = [...messages].reverse();
    let done = null;
    for (const m of [...shuffled, shuffled[0]]) done = a.add(JSON.parse(m), m.length) ?? done;
    expect(done).toEqual({ status: 'ok', data, transaction: 't2' });
    expect(a.bytes).toBe([...shuffled, shuffled[0]].reduce((s, m) => s + m.length, 0));
  });

  it('an error answer is never split', () => {
    const big = 'x'.repeat(COMPRESS_FROM * 2);
    expect(encodeResponse({ status: 'error', data: null, error: big })).toHaveLength(1);
  });

  it('refuses a part that does not fit the answer', () => {
    const a = new PartAssembler();
    expect(a.add({ status: 'ok', encoding: 'deflate-base64', part: 0, parts: 2, data: 'AA' }, 10)).toBeNull();
    expect(() => a.add({ status: 'ok', encoding: 'deflate-base64', part: 1, parts: 3, data: 'AA' }, 10)).toThrow(/does not fit/);
    expect(() => new PartAssembler().add({ status: 'ok', encoding: 'deflate-base64', part: 5, parts: 2, data: '' }, 1)).toThrow(/does not fit/);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { SampleBuffer, openStateDb, type StateDb } from '../../src/state/index.js';
import { DataError } from '../../src/common/index.js';
import { HOUR, bytesOf, image, inputs, tempStateDir } from './helpers.js';

let open: StateDb[] = [];
function setup(opts: ConstructorParameters<typeof SampleBuffer>[1] = {}, dir = tempStateDir()) {
  const state = openStateDb(dir);
  open.push(state);
  // Timers are slow by default so tests decide when a flush happens.
  return { dir, state, buf: new SampleBuffer(state, { flushMs: 60_000, batchSize: 10_000, ...opts }) };
}
afterEach(() => {
  for (const s of open) s.close();
  open = [];
});

// Recent enough that the default one-week age bound keeps every row; on an hour boundary.
const T0 = (Math.floor(Date.now() / HOUR) - 24) * HOUR;

describe('SampleBuffer storage', () => {
  it('stores bytes, shape, class and time exactly, across a reopen', () => {
    const { dir, state, buf } = setup();
    const two = {
      a: { dtype: 'float32' as const, shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-40]) },
      b: { dtype: 'float32' as const, shape: [1, 784], data: image(7) },
    };
    expect(buf.add({ inputs: two, predicted: 4, time: T0 })).toBe(true);
    expect(buf.add({ inputs: inputs(1), time: T0 + 1 })).toBe(true);
    expect(buf.count()).toBe(0);
    expect(buf.flush()).toBe(2);
    state.close();

    const again = setup({}, dir);
    const [first, second] = [...again.buf.iterate()];
    expect(Object.keys(first.inputs)).toEqual(['a', 'b']);
    expect(first.inputs.a.shape).toEqual([2, 3]);
    expect(first.inputs.b.shape).toEqual([1, 784]);
    expect(bytesOf(first.inputs.a.data).equals(bytesOf(two.a.data))).toBe(true);
    expect(bytesOf(first.inputs.b.data).equals(bytesOf(two.b.data))).toBe(true);
    expect(Object.is(first.inputs.a.data[4], -0)).toBe(true);
    expect(first).toMatchObject({ predicted: 4, time: T0, bucket: Math.floor(T0 / HOUR) });
    expect(second.predicted).toBeNull();
    expect(bytesOf(second.inputs.x.data).equals(bytesOf(image(1)))).toBe(true);
  });

  it('copies on add, so the caller may reuse its array', () => {
    const { buf } = setup();
    const data = image(3);
    buf.add({ inputs: { x: { dtype: 'float32', shape: [784], data } }, time: T0 });
    data.fill(9);
    buf.flush();
    expect(bytesOf([...buf.iterate({ limit: 1, newestFirst: true })][0].inputs.x.data).equals(bytesOf(image(3)))).toBe(true);
  });

  it('rejects non-finite samples and never stores them', () => {
    const { buf } = setup();
    for (const bad of [NaN, Infinity, -Infinity]) {
      const d = image(1);
      d[100] = bad;
      expect(buf.add({ inputs: { x: { dtype: 'float32', shape: [784], data: d } } })).toBe(false);
    }
    const ok = { x: { dtype: 'float32' as const, shape: [784], data: image(2) } };
    const badSecond = { ...ok, y: { dtype: 'float32' as const, shape: [1], data: Float32Array.of(NaN) } };
    expect(buf.add({ inputs: badSecond })).toBe(false);
    expect(buf.add({ inputs: ok })).toBe(true);
    buf.flush();
    expect(buf.count()).toBe(1);
    expect(buf.stats().rejectedNonFinite).toBe(4);
  });

  it('throws DataError for malformed samples', () => {
    const { buf } = setup();
    expect(() => buf.add({ inputs: {} })).toThrow(DataError);
    expect(() => buf.add({ inputs: { x: { dtype: 'float32', shape: [2, 2], data: new Float32Array(3) } } })).toThrow(/holds 4 values/);
    expect(() => buf.add({ inputs: inputs(1), predicted: -1 })).toThrow(DataError);
    expect(() => buf.add({ inputs: inputs(1), predicted: 1.5 })).toThrow(DataError);
  });

  it('reports stats', () => {
    const { buf } = setup();
    expect(buf.stats()).toMatchObject({ rows: 0, bytes: 0, oldest: null, newest: null, perClass: {}, hours: 0 });
    buf.add({ inputs: inputs(1), predicted: 3, time: T0 });
    buf.add({ inputs: inputs(2), predicted: 3, time: T0 + 2 * HOUR });
    buf.add({ inputs: inputs(3), time: T0 + HOUR });
    expect(buf.stats().pending).toBe(3);
    buf.flush();
    const s = buf.stats();
    expect(s).toMatchObject({ rows: 3, oldest: T0, newest: T0 + 2 * HOUR, perClass: { '3': 2, unknown: 1 }, hours: 3, pending: 0, flushes: 1 });
    expect(s.bytes).toBeGreaterThan(3 * 784 * 4);
    expect(s.bytes).toBe(buf.bytes());
  });
});

describe('SampleBuffer batching', () => {
  it('writes many adds in few transactions', () => {
    const { buf } = setup({ batchSize: 100 });
    for (let i = 0; i < 1000; i++) buf.add({ inputs: inputs(i, 16), time: T0 + i });
    expect(buf.stats().flushes).toBe(10);
    expect(buf.count()).toBe(1000);
    for (let i = 0; i < 5; i++) buf.add({ inputs: inputs(i, 16), time: T0 + i });
    expect(buf.count()).toBe(1000);
    buf.flush();
    expect(buf.stats()).toMatchObject({ rows: 1005, flushes: 11 });
    expect(buf.flush()).toBe(0);
    expect(buf.stats().flushes).toBe(11);
  });

  it('a timer flushes a partial batch', async () => {
    const { buf } = setup({ flushMs: 20 });
    buf.add({ inputs: inputs(1) });
    buf.add({ inputs: inputs(2) });
    expect(buf.count()).toBe(0);
    await new Promise((r) => setTimeout(r, 150));
    expect(buf.stats()).toMatchObject({ rows: 2, flushes: 1, pending: 0 });
  });

  it('close() flushes what is queued', () => {
    const { dir, state, buf } = setup();
    buf.add({ inputs: inputs(1) });
    state.close();
    expect(setup({}, dir).buf.count()).toBe(1);
  });
});

describe('SampleBuffer reads', () => {
  function filled(n: number) {
    const s = setup();
    for (let i = 0; i < n; i++) s.buf.add({ inputs: inputs(i, 8), predicted: i % 10, time: T0 + i * 1000 });
    s.buf.flush();
    return s;
  }

  it('iterates in time order, either way, with limits', () => {
    const { buf } = filled(150);
    const all = [...buf.iterate({ pageSize: 16 })];
    expect(all.map((s) => s.time)).toEqual(Array.from({ length: 150 }, (_, i) => T0 + i * 1000));
    const newest = [...buf.iterate({ newestFirst: true, limit: 40, pageSize: 7 })];
    expect(newest.map((s) => s.time)).toEqual(Array.from({ length: 40 }, (_, i) => T0 + (149 - i) * 1000));
    expect([...buf.iterate({ limit: 5, pageSize: 2 })]).toHaveLength(5);
  });

  it('orders rows with equal times by id', () => {
    const { buf } = setup();
    for (let i = 0; i < 10; i++) buf.add({ inputs: inputs(i, 4), predicted: i, time: T0 });
    buf.flush();
    expect([...buf.iterate({ pageSize: 3 })].map((s) => s.predicted)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...buf.iterate({ pageSize: 3, newestFirst: true })].map((s) => s.predicted)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it('lets flushes happen while an iteration is paused', () => {
    const { buf } = filled(100);
    const it = buf.iterate({ pageSize: 10 });
    let seen = 0;
    for (const _ of it) {
      if (++seen % 25 === 0) {
        buf.add({ inputs: inputs(seen, 8), time: T0 - seen });
        buf.flush();
      }
    }
    expect(seen).toBe(100);
    expect(buf.count()).toBe(104);
  });

  it('clear() drops stored and queued samples', () => {
    const { buf } = filled(20);
    buf.add({ inputs: inputs(1) });
    buf.clear();
    buf.flush();
    expect(buf.stats()).toMatchObject({ rows: 0, bytes: 0, perClass: {} });
  });
});

describe('SampleBuffer bounds', () => {
  it('keeps at most maxRows', () => {
    const { buf } = setup({ maxRows: 100, batchSize: 64 });
    for (let i = 0; i < 1000; i++) buf.add({ inputs: inputs(i, 8), predicted: i % 5, time: T0 + i });
    buf.flush();
    expect(buf.count()).toBe(100);
    expect(buf.stats().evicted).toBe(900);
  });

  it('keeps at most maxBytes', () => {
    const probe = setup();
    probe.buf.add({ inputs: inputs(0) });
    probe.buf.flush();
    const rowBytes = probe.buf.bytes();
    const { buf } = setup({ maxBytes: rowBytes * 10 + rowBytes / 2, batchSize: 7 });
    for (let i = 0; i < 50; i++) buf.add({ inputs: inputs(i), predicted: i % 3, time: T0 + i });
    buf.flush();
    expect(buf.bytes()).toBeLessThanOrEqual(rowBytes * 10.5);
    expect(buf.count()).toBe(10);
  });

  it('drops rows older than maxAge, at flush and at open', () => {
    let now = T0;
    const { dir, state, buf } = setup({ maxAgeMs: 168 * HOUR, now: () => now });
    buf.add({ inputs: inputs(1), time: T0 - 200 * HOUR });
    buf.add({ inputs: inputs(2), time: T0 - 100 * HOUR });
    buf.add({ inputs: inputs(3), time: T0 - HOUR });
    buf.flush();
    expect([...buf.iterate()].map((s) => s.time)).toEqual([T0 - 100 * HOUR, T0 - HOUR]);
    state.close();
    now = T0 + 80 * HOUR;
    const again = setup({ maxAgeMs: 168 * HOUR, now: () => now }, dir);
    expect([...again.buf.iterate()].map((s) => s.time)).toEqual([T0 - HOUR]);
  });

  it('keeps every class and hour represented where FIFO would lose a class', () => {
    const maxRows = 60;
    const { buf } = setup({ maxRows, batchSize: 50 });
    type Row = { time: number; predicted: number };
    const arrivals: Row[] = [];
    // A rare class seen only early on, then three common classes over ten hours.
    for (let i = 0; i < 4; i++) arrivals.push({ time: T0 + i * 1000, predicted: 7 });
    for (let h = 1; h <= 10; h++) {
      for (let i = 0; i < 30; i++) arrivals.push({ time: T0 + h * HOUR + i * 1000, predicted: i % 3 });
    }
    for (const [i, a] of arrivals.entries()) buf.add({ inputs: inputs(i, 8), ...a });
    buf.flush();

    const fifo = arrivals.slice(-maxRows);
    expect(fifo.some((a) => a.predicted === 7)).toBe(false);

    const kept = [...buf.iterate()];
    expect(kept).toHaveLength(maxRows);
    expect(kept.filter((s) => s.predicted === 7)).toHaveLength(4);
    const hours = new Set(kept.map((s) => s.bucket - Math.floor(T0 / HOUR)));
    expect([...hours].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const cls of [0, 1, 2]) {
      const rows = kept.filter((s) => s.predicted === cls);
      expect(rows.length).toBeGreaterThanOrEqual(18);
      // Each common class stays spread over all ten hours, not packed into the newest ones.
      expect(new Set(rows.map((s) => s.bucket)).size).toBe(10);
    }
    // Within an hour the newest rows survive.
    const hour10 = kept.filter((s) => s.predicted === 0 && s.bucket === Math.floor(T0 / HOUR) + 10);
    expect(Math.min(...hour10.map((s) => s.time))).toBeGreaterThan(T0 + 10 * HOUR);
    expect(Math.max(...hour10.map((s) => s.time))).toBe(T0 + 10 * HOUR + 27_000);
  });

  it('evicts through the group index, without scanning the samples table', () => {
    const { state } = setup();
    const plan = (sql: string, ...args: unknown[]) =>
      (state.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join(' | ');
    const group = plan('DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE predicted IS ? AND bucket = ? ORDER BY created_ms, id LIMIT ?)', 1, 2, 3);
    expect(group).toContain('USING COVERING INDEX samples_group');
    expect(group).not.toMatch(/SCAN samples|TEMP B-TREE/);
    expect(plan('DELETE FROM samples WHERE created_ms < ?', 1)).toContain('samples_created');
    const page = plan('SELECT id FROM samples WHERE (created_ms, id) > (?, ?) ORDER BY created_ms, id LIMIT ?', 1, 2, 3);
    expect(page).toContain('SEARCH samples USING COVERING INDEX samples_created');
    expect(page).not.toContain('TEMP B-TREE');
  });
});

// The fleet's pure pieces: backoff, bounded queue, latency recorder, topics and signing.
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/fleet/backoff.js';
import { BoundedQueue } from '../../src/fleet/queue.js';
import { LatencyRecorder } from '../../src/fleet/latency.js';
import { canonicalJson, hasValidSignature, SignatureVerifier, signPayload } from '../../src/fleet/signing.js';
import { deviceOf, deviceTopics, requestTopic } from '../../src/fleet/topics.js';

describe('Backoff', () => {
  it('grows exponentially with jitter between half and all of the step, capped', () => {
    const lo = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect([lo.next(), lo.next(), lo.next(), lo.next(), lo.next(), lo.next()]).toEqual([50, 100, 200, 400, 500, 500]);
    const hi = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([hi.next(), hi.next(), hi.next(), hi.next(), hi.next()]).toEqual([100, 200, 400, 800, 1000]);
    hi.reset();
    expect(hi.next()).toBe(100);
    expect(() => new Backoff({ initialMs: 0 })).toThrow(RangeError);
  });
});

describe('BoundedQueue', () => {
  it('never holds more than its bound, drops the oldest and counts', () => {
    const q = new BoundedQueue<number>(3);
    for (let i = 0; i < 10; i++) q.push(i);
    expect(q.length).toBe(3);
    expect(q.dropped).toBe(7);
    expect(q.highWater).toBe(3);
    expect(q.drain()).toEqual([7, 8, 9]);
    expect(q.length).toBe(0);
    const none = new BoundedQueue<number>(0);
    none.push(1);
    expect([none.length, none.dropped]).toEqual([0, 1]);
  });
});

describe('LatencyRecorder', () => {
  it('summarises the interval and starts over', () => {
    const r = new LatencyRecorder(1000);
    for (let i = 1; i <= 100; i++) r.record(i);
    const s = r.take();
    expect(s).toMatchObject({ count: 100, p50: 50, p95: 95, p99: 99, max: 100, samples: 100 });
    expect(r.take()).toMatchObject({ count: 0, p50: null, samples: 0 });
  });

  it('keeps a bounded reservoir', () => {
    const r = new LatencyRecorder(64);
    for (let i = 0; i < 10_000; i++) r.record(i % 100);
    const s = r.take();
    expect(s.count).toBe(10_000);
    expect(s.samples).toBe(64);
    expect(s.p50!).toBeGreaterThan(20);
    expect(s.p50!).toBeLessThan(80);
  });

});

describe('topics', () => {
  it('parses device and fleet request topics, multi-level commands included', () => {
    const t = deviceTopics('calibd', 'edge-01');
    expect(t.status).toBe('calibd/edge-01/status');
    expect(t.requestOf('calibd/edge-01/request/config/set')).toEqual({ target: 'edge-01', command: 'config/set' });
    expect(t.requestOf('calibd/fleet/request/recalibrate')).toEqual({ target: 'fleet', command: 'recalibrate' });
    expect(t.requestOf('calibd/edge-02/request/recalibrate')).toBeNull();
    expect(t.response('buffer/stats')).toBe('calibd/edge-01/response/buffer/stats');
    expect(deviceOf('a/b', 'a/b/dev/response/status')).toEqual({ device: 'dev', rest: 'response/status' });
    expect(requestTopic('calibd', null, 'status')).toBe('calibd/fleet/request/status');
  });
});

describe('signing', () => {
  const key = Buffer.from('0123456789abcdef0123456789abcdef');
  const at = (command: string, target = 'edge-01') => ({ target, command });

  it('a retained document is checked for its signature only: any age, any number of reads', () => {
    const doc = { format: 'calibd-ranges', ranges: [['t', 0, 1]] };
    const to = at('calibration/' + 'a'.repeat(64), 'fleet');
    const signed = signPayload(key, to, doc, 1);
    expect(hasValidSignature(key, to, signed)).toBe(true);
    expect(hasValidSignature(key, to, signed)).toBe(true);
    expect(hasValidSignature(key, to, { ...signed, ranges: [['t', 0, 2]] })).toBe(false);
    expect(hasValidSignature(key, at('calibration/' + 'b'.repeat(64), 'fleet'), signed)).toBe(false);
    expect(hasValidSignature(Buffer.from('another key, sixteen bytes+'), to, signed)).toBe(false);
    expect(hasValidSignature(key, to, doc)).toBe(false);
  });

  it('canonical JSON sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
  });

  it('accepts a signed payload once, in any key order', () => {
    let now = 1_000_000;
    const v = new SignatureVerifier(key, 30_000, () => now);
    const p = signPayload(key, at('rollback'), { version: 3, transaction: 't1' }, now);
    const reordered = Object.fromEntries(Object.entries(p).reverse());
    expect(v.verify(at('rollback'), reordered)).toEqual({ ok: true });
    expect(v.verify(at('rollback'), p)).toMatchObject({ ok: false, reason: expect.stringMatching(/replayed/) });
    now += 61_000;
    expect(v.cacheSize).toBe(1);
    v.verify(at('rollback'), signPayload(key, at('rollback'), {}, now));
    expect(v.cacheSize).toBe(1); // the old signature expired out of the cache
  });

  it('refuses unsigned, tampered, re-targeted, expired and foreign-key payloads', () => {
    const now = 5_000_000;
    const v = new SignatureVerifier(key, 30_000, () => now);
    expect(v.verify(at('recalibrate'), { method: 'mse' })).toMatchObject({ ok: false, reason: expect.stringMatching(/missing/) });
    const p = signPayload(key, at('recalibrate'), { method: 'mse' }, now);
    expect(v.verify(at('recalibrate'), { ...p, method: 'minmax' })).toMatchObject({ ok: false, reason: 'bad signature' });
    expect(v.verify(at('buffer/clear'), p)).toMatchObject({ ok: false, reason: 'bad signature' });
    // Signed for edge-01: neither another device nor the fleet-wide topic takes it.
    expect(v.verify(at('recalibrate', 'edge-02'), p)).toMatchObject({ ok: false, reason: 'bad signature' });
    expect(v.verify(at('recalibrate', 'fleet'), p)).toMatchObject({ ok: false, reason: 'bad signature' });
    expect(v.verify(at('recalibrate'), signPayload(key, at('recalibrate'), {}, now - 31_000))).toMatchObject({ ok: false, reason: expect.stringMatching(/window/) });
    expect(v.verify(at('recalibrate'), signPayload(key, at('recalibrate'), {}, now + 31_000))).toMatchObject({ ok: false, reason: expect.stringMatching(/window/) });
    expect(v.verify(at('recalibrate'), signPayload(Buffer.from('another key of 32 bytes........'), at('recalibrate'), {}, now))).toMatchObject({ ok: false, reason: 'bad signature' });
    expect(v.verify(at('recalibrate'), p)).toEqual({ ok: true });
  });
});

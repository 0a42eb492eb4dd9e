// The job queue with plain promises: one job at a time, in order, a failure kept with its caller.
import { describe, expect, it } from 'vitest';
import { JobQueue } from '../../src/agent/job-queue.js';

describe('job queue', () => {
  it('runs jobs one after another, a failed one handing its error to its caller only', async () => {
    const q = new JobQueue();
    const order: string[] = [];
    let release!: () => void;
    const first = q.run(() => new Promise<string>((r) => (release = () => r('a'))).then((v) => (order.push(v), v)));
    const second = q.run(async () => {
      order.push('b');
      throw new Error('b failed');
    });
    const third = q.run(async () => (order.push('c'), 'c'));
    await Promise.resolve();
    expect(order).toEqual([]);
    release();
    expect(await first).toBe('a');
    await expect(second).rejects.toThrow('b failed');
    expect(await third).toBe('c');
    await q.idle();
    expect(order).toEqual(['a', 'b', 'c']);
  });
});

// One job at a time: recalibrations and rollbacks run in the order they were asked for,
// each after the previous one ended, whether it succeeded or failed.

export class JobQueue {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `job` after every job queued before it; the caller gets its result or its error. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job);
    // The queue only needs to know the job ended: its error belongs to the caller, who has it.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Resolves once every job queued so far has ended. */
  idle(): Promise<void> {
    return this.tail;
  }
}

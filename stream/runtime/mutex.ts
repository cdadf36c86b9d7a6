// One thing at a time on the worker: batches, ticks, assignments and checkpoints never interleave,
// so a checkpoint sees every task between two records.
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

/** Bounds how many uploads run at once (and how many of them may be multipart). */
export class Semaphore {
  private waiting: (() => void)[] = [];
  private active = 0;

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>(resolve => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Runs at most `limit` tasks at once. `submit` returns once the task has started, waiting for a
 * free slot first: a producer that awaits it never runs ahead of the uploads, so memory is
 * bounded by the limit, not by the number of files.
 */
export class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  async submit(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running);
    const started = task()
      .catch(err => void (this.failure ??= err))
      .finally(() => this.running.delete(started));
    this.running.add(started);
  }

  /** Waits for every task; rejects with the first failure (tasks are expected to catch their own). */
  async drain(): Promise<void> {
    while (this.running.size) await Promise.race(this.running);
    if (this.failure !== undefined) throw this.failure;
  }
}

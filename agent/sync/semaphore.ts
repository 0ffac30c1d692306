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
 * bounded by the limit, not by the number of files. A task of a higher priority than one running
 * does not wait for a slot (up to twice the limit): a long upload of a low priority cannot hold
 * it back (the rate limiter then gives it the bandwidth first).
 */
export class TaskPool {
  private readonly running = new Map<Promise<void>, number>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  async submit(task: () => Promise<void>, priority = 0): Promise<void> {
    while (this.running.size >= this.limit && !this.mayJumpIn(priority))
      await Promise.race(this.running.keys());
    const started = task()
      .catch(err => void (this.failure ??= err))
      .finally(() => this.running.delete(started));
    this.running.set(started, priority);
  }

  private mayJumpIn(priority: number): boolean {
    if (this.running.size >= 2 * this.limit) return false;
    for (const running of this.running.values()) if (running < priority) return true;
    return false;
  }

  /** The lowest priority among the running tasks (Infinity when none runs). */
  get lowestRunning(): number {
    return Math.min(...this.running.values());
  }

  /** Waits up to `ms` for every task to end; true when none is left running. */
  async idleWithin(ms: number): Promise<boolean> {
    if (!this.running.size) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>(resolve => (timer = setTimeout(resolve, ms)));
    const all = Promise.allSettled(this.running.keys()).then(() => undefined);
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    return this.running.size === 0;
  }

  /** Waits for every task; rejects with the first failure (tasks are expected to catch their own). */
  async drain(): Promise<void> {
    while (this.running.size) await Promise.race(this.running.keys());
    if (this.failure !== undefined) throw this.failure;
  }
}

/**
 * Per-device reconcile queue. Pepr's Reconcile neither retries nor coalesces; this does both:
 * a key enqueued while it runs runs once more afterwards, a failure is retried with doubling
 * backoff and jitter (1 s up to 5 min), and a key is never worked on twice at once. Work may
 * return `{ requeueAfterMs }` to be run again later (controller-runtime's RequeueAfter). At most
 * `workers` keys run at once (controller-runtime's MaxConcurrentReconciles): a restart with
 * thousands of devices queues them instead of sending all their requests at once.
 */
export interface QueueLogger {
  warn(obj: object, msg: string): void;
}

export class WorkQueue {
  private running = new Set<string>();
  private again = new Set<string>();
  private timers = new Map<string, ReturnType<typeof setTimeout>>();
  private failures = new Map<string, number>();
  /** Due, waiting for a free worker, in order. */
  private ready = new Set<string>();

  constructor(
    private readonly work: (key: string) => Promise<{ requeueAfterMs?: number } | void>,
    private readonly log: QueueLogger,
    private readonly maxBackoffMs = 300_000,
    private readonly workers = 8,
  ) {}

  /** Work on key after delayMs (0: now). An earlier pending run wins over a later one. */
  enqueue(key: string, delayMs = 0): void {
    if (this.running.has(key)) {
      if (delayMs === 0) this.again.add(key);
      else this.schedule(key, delayMs);
      return;
    }
    this.schedule(key, delayMs);
  }

  private schedule(key: string, delayMs: number): void {
    const pending = this.timers.get(key);
    if (pending && delayMs > 0) return;
    if (pending) clearTimeout(pending);
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        void this.run(key);
      }, delayMs),
    );
  }

  private async run(key: string): Promise<void> {
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    if (this.running.size >= this.workers) {
      this.ready.add(key);
      return;
    }
    this.running.add(key);
    try {
      const result = await this.work(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs) this.schedule(key, result.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min(this.maxBackoffMs, 1000 * 2 ** (n - 1)) * (0.8 + Math.random() * 0.4);
      this.log.warn(
        { key, attempt: n, retryInMs: Math.round(delay), error: describe(err) },
        "reconcile failed; will retry",
      );
      this.schedule(key, delay);
    } finally {
      this.running.delete(key);
      if (this.again.delete(key)) this.schedule(key, 0);
      this.startReady();
    }
  }

  /** Keys waiting to run: for a free worker, or to run again after the current run. */
  get depth(): number {
    return this.ready.size + this.again.size;
  }

  /** Keys whose last run failed, waiting for their retry. */
  get retrying(): number {
    return this.failures.size;
  }

  private startReady(): void {
    for (const key of this.ready) {
      if (this.running.size >= this.workers) return;
      this.ready.delete(key);
      void this.run(key);
    }
  }
}

/** KFC throws plain objects ({status, statusText, data}); make any error a short line. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { status?: number; statusText?: string; data?: { message?: string } };
  if (e && typeof e === "object" && "status" in e)
    return `HTTP ${e.status}: ${e.data?.message ?? e.statusText ?? ""}`.trim();
  return String(err);
}

/**
 * A token bucket: an optional bandwidth cap shared by all uploads (bytes per second; uploads
 * take tokens before they send, so the cap holds across files running in parallel), and the
 * module's limit on requests to the API server (requests per second, with a burst).
 */
import { Transform, type TransformCallback } from "node:stream";

export class RateLimiter {
  private tokens: number;
  private last = Date.now();

  /** bytesPerSecond 0 or undefined: no cap; `burst`: the bucket's size (default a second's worth). */
  constructor(
    private bytesPerSecond?: number,
    private burst = bytesPerSecond ?? 0,
  ) {
    this.tokens = burst;
  }

  /** A new rate (undefined: no cap) for the takers from now on, and those waiting. */
  setRate(bytesPerSecond: number | undefined): void {
    if (bytesPerSecond === this.bytesPerSecond) return;
    this.bytesPerSecond = bytesPerSecond;
    this.burst = bytesPerSecond ?? 0;
    this.tokens = Math.min(this.tokens, this.burst);
  }

  get rate(): number | undefined {
    return this.bytesPerSecond;
  }

  get enabled(): boolean {
    return !!this.bytesPerSecond;
  }

  /**
   * Waits until `bytes` may be sent; an abort of `signal` ends the wait with its reason. While a
   * taker of a higher priority waits, lower ones wait too: the higher gets the tokens first.
   */
  async take(bytes: number, signal?: AbortSignal, priority = 0): Promise<void> {
    if (!this.bytesPerSecond) return;
    this.waiting.set(priority, (this.waiting.get(priority) ?? 0) + 1);
    try {
      for (;;) {
        const rate = this.bytesPerSecond;
        if (!rate) return;
        const now = Date.now();
        this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * rate);
        this.last = now;
        // A chunk larger than the bucket waits until the bucket is full, then goes.
        const need = Math.min(bytes, this.burst);
        const first = !this.higherThan(priority);
        if (first && this.tokens >= need) {
          this.tokens -= bytes;
          return;
        }
        signal?.throwIfAborted();
        const ms = first ? Math.ceil(((need - this.tokens) / rate) * 1000) : 20;
        await new Promise<void>(resolve => {
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            resolve();
          };
          const timer = setTimeout(done, ms);
          signal?.addEventListener("abort", done, { once: true });
        });
        signal?.throwIfAborted();
      }
    } finally {
      const left = this.waiting.get(priority)! - 1;
      if (left) this.waiting.set(priority, left);
      else this.waiting.delete(priority);
    }
  }

  /** Takers waiting, by priority. */
  private readonly waiting = new Map<number, number>();

  private higherThan(priority: number): boolean {
    for (const p of this.waiting.keys()) if (p > priority) return true;
    return false;
  }

  /** A pass-through stream that paces what flows through it. */
  stream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) => {
        this.take(chunk.length).then(() => done(null, chunk), done);
      },
    });
  }
}

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
    private readonly bytesPerSecond?: number,
    private readonly burst = bytesPerSecond ?? 0,
  ) {
    this.tokens = burst;
  }

  get enabled(): boolean {
    return !!this.bytesPerSecond;
  }

  /** Waits until `bytes` may be sent; an abort of `signal` ends the wait with its reason. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const rate = this.bytesPerSecond;
    if (!rate) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * rate);
      this.last = now;
      // A chunk larger than the bucket waits until the bucket is full, then goes.
      const need = Math.min(bytes, this.burst);
      if (this.tokens >= need) {
        this.tokens -= bytes;
        return;
      }
      signal?.throwIfAborted();
      await new Promise<void>(resolve => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, Math.ceil(((need - this.tokens) / rate) * 1000));
        signal?.addEventListener("abort", done, { once: true });
      });
      signal?.throwIfAborted();
    }
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

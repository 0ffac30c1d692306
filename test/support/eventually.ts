/** Bounded waits for an eventual state: tests assert outcomes, never timings. */
/** Polls until check returns a value other than undefined, or fails after timeoutMs. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > end) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`,
      );
    }
    await new Promise(resolve => setTimeout(resolve, 200));
  }
}

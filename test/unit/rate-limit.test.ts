import { test } from "uvu";
import * as assert from "uvu/assert";
import { RateLimiter } from "../../agent/sync/rate-limit";

/** Whether `promise` settles before the event loop has run once more (no timer has fired). */
async function settledAtOnce(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  await new Promise(resolve => setImmediate(resolve));
  return settled;
}

test("the module's API limit: a burst goes at once, the request after it waits", async () => {
  const limiter = new RateLimiter(10, 5); // 10 requests per second, bursts of 5
  for (let i = 0; i < 5; i++) assert.ok(await settledAtOnce(limiter.take(1)), `request ${i + 1}`);
  const sixth = limiter.take(1);
  assert.not.ok(await settledAtOnce(sixth), "the sixth request went at once");
  await sixth; // and it does go, once a token is back
});

test("without a rate nothing waits", async () => {
  const limiter = new RateLimiter();
  for (let i = 0; i < 100; i++) assert.ok(await settledAtOnce(limiter.take(1 << 20)));
});

test("the bandwidth cap's bucket is a second's worth by default", async () => {
  const limiter = new RateLimiter(1000);
  assert.ok(await settledAtOnce(limiter.take(1000)));
  assert.not.ok(await settledAtOnce(limiter.take(1000)));
});

test.run();

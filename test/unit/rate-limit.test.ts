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

test("a taker of a higher priority gets the tokens before lower ones waiting", async () => {
  const limiter = new RateLimiter(100_000);
  await limiter.take(100_000); // empty the bucket
  const order: string[] = [];
  const low = limiter.take(50_000, undefined, 0).then(() => order.push("low"));
  await new Promise(resolve => setTimeout(resolve, 5));
  const high = limiter.take(50_000, undefined, 5).then(() => order.push("high"));
  await Promise.all([low, high]);
  assert.equal(order, ["high", "low"]);
});

test("setRate applies to takers already waiting; no rate lets them go", async () => {
  const limiter = new RateLimiter(1000);
  await limiter.take(1000);
  const waiting = limiter.take(1000_000);
  limiter.setRate(undefined);
  await waiting; // would take about 1,000 s at the old rate
  assert.is(limiter.rate, undefined);
});

test.run();

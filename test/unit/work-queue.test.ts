import { test } from "uvu";
import * as assert from "uvu/assert";
import { WorkQueue } from "../../capabilities/work-queue";
import { References } from "../../capabilities/references";

const quiet = { warn: () => undefined };
const tick = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

test("a key never runs twice at once; an enqueue while running runs once more after", async () => {
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  const queue = new WorkQueue(async () => {
    runs++;
    active++;
    maxActive = Math.max(maxActive, active);
    await tick(30);
    active--;
  }, quiet);
  queue.enqueue("a");
  await tick(5);
  queue.enqueue("a");
  queue.enqueue("a");
  await tick(120);
  assert.is(maxActive, 1);
  assert.is(runs, 2, "two enqueues during a run coalesce into one more run");
});

test("a failure is retried with backoff until it succeeds", async () => {
  let attempts = 0;
  const warnings: unknown[] = [];
  const queue = new WorkQueue(
    async () => {
      attempts++;
      if (attempts < 3) throw { status: 500, data: { message: "etcd busy" } };
    },
    { warn: o => warnings.push(o) },
    20,
  );
  queue.enqueue("k");
  await tick(200);
  assert.is(attempts, 3);
  assert.match(JSON.stringify(warnings[0]), /HTTP 500: etcd busy/);
});

test("at most `workers` keys run at once; every key still runs", async () => {
  let active = 0;
  let maxActive = 0;
  const done = new Set<string>();
  const queue = new WorkQueue(
    async key => {
      active++;
      maxActive = Math.max(maxActive, active);
      await tick(10);
      active--;
      done.add(key);
    },
    quiet,
    300_000,
    4,
  );
  for (let i = 0; i < 20; i++) queue.enqueue(`k${i}`);
  await tick(300);
  assert.is(maxActive, 4);
  assert.is(done.size, 20);
});

test("work that returns requeueAfterMs runs again after that delay", async () => {
  let runs = 0;
  const queue = new WorkQueue(async () => (++runs < 3 ? { requeueAfterMs: 20 } : {}), quiet);
  queue.enqueue("a");
  await tick(200);
  assert.is(runs, 3, "requeued twice, then done");
});

test("references route ConfigMap and Secret changes to the devices that use them", () => {
  const refs = new References();
  refs.record("edge/cam-1", "edge", { configMaps: ["s3cfg"], secrets: ["s3creds"] });
  refs.record("edge/cam-2", "edge", { configMaps: ["s3cfg"], secrets: [] });
  assert.equal(refs.devicesUsing("ConfigMap", "edge", "s3cfg").sort(), [
    "edge/cam-1",
    "edge/cam-2",
  ]);
  assert.equal(refs.devicesUsing("Secret", "other", "s3creds"), []);
  assert.equal(refs.devicesUsingAny("Secret"), ["edge/cam-1"], "a missed Secret event");
  assert.equal(refs.devicesUsingAny("ConfigMap").sort(), ["edge/cam-1", "edge/cam-2"]);
  refs.record("edge/cam-1", "edge", { configMaps: [], secrets: ["b"] });
  assert.equal(refs.devicesUsing("ConfigMap", "edge", "s3cfg"), ["edge/cam-2"]);
  refs.forget("edge/cam-2");
  assert.equal(refs.devicesUsing("ConfigMap", "edge", "s3cfg"), []);
});

test.run();

/**
 * Stalls are visible: with stallAfterSeconds set, the agent counts waiting files on its own
 * timer, so files written while no pass runs (events off, a very long interval) show as a
 * growing age of the oldest waiting file (a metric) and as a stall (log, and status). Real agent,
 * real S3 server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { eventually } from "../support/eventually";
import { listKeys, newBucket } from "../support/s3";

const device = testDevice(test, "agent-stall");
const { source } = device;
const metric = async (textfile: string) =>
  Number(
    /^flotta_agent_oldest_waiting_seconds (\d+)$/m.exec(
      await readFile(textfile, "utf8").catch(() => ""),
    )?.[1] ?? NaN,
  );

test("files written while no pass runs raise the stall, with the age of the oldest", async () => {
  const bucket = await newBucket("stall");
  await device.configure(bucket, {}, { stallAfterSeconds: 10 });
  await mkdir(source(), { recursive: true });
  await writeTree(source(), { "first.csv": "1" });
  const textfile = join(device.root, "metrics.prom");
  const running = device.start("--no-events", "--interval", "3600", "--metrics-textfile", textfile);
  await eventually("the first file", async () =>
    (await listKeys(bucket)).size === 1 ? true : undefined,
  );
  await eventually("a census with nothing waiting", async () =>
    (await metric(textfile)) === 0 ? true : undefined,
  );
  assert.not.match(running.logs(), /uploads stalled/);
  await writeTree(source(), { "second.csv": "2", "third.csv": "3" });
  await eventually("the stall", async () =>
    /"msg":"uploads stalled"/.test(running.logs()) ? true : undefined,
  );
  assert.match(
    running.logs(),
    /the oldest of 2 waiting files changed at .*, over 10 s ago, and is not in the bucket/,
  );
  assert.ok((await metric(textfile)) >= 10, `oldest waiting ${await metric(textfile)} s`);
  assert.equal([...(await listKeys(bucket)).keys()], ["out/first.csv"], "no pass ran meanwhile");
});

test.run();

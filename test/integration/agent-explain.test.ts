/**
 * `flotta-agent explain PATH` answers why a file is or is not in the bucket, from the config and
 * the state dir, for each of its cases: excluded by a named glob, quiet until a time, held by
 * the bandwidth timetable, failed with the error, uploaded (when, as which key), deleted by
 * retention (when), and waiting. Real agent, real S3 server (and a proxy that corrupts ETags).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { utimes } from "node:fs/promises";
import { join } from "node:path";
import { runAgent, storageFor } from "../support/agent-cli";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy";
import { newBucket } from "../support/s3";
import { testEnv } from "../support/env";

let proxy: FaultProxy | undefined;
const device = testDevice(test, "agent-explain");
const { args, configure, volumes } = device;
test.after.each(async () => {
  await proxy?.stop();
  proxy = undefined;
});
const file = (name: string) => join(device.source(), name);
async function explain(path: string): Promise<string> {
  const run = await runAgent(["explain", path, ...args()]);
  assert.is(run.status, 0, run.stderr);
  return run.stdout.trim();
}
const sync = async () => (await runAgent(["sync", "--once", ...args()])).status;
const ISO = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ";

test("excluded by a named glob, uploaded as a key, not in any data path, waiting", async () => {
  const bucket = await newBucket("explain");
  await configure(
    bucket,
    { include: ["*.csv", "*.tmp"], exclude: ["*.tmp"] },
    { keyPrefix: "edge" },
  );
  await writeTree(join(volumes(), "cam", "data"), { "a.csv": "a", "b.tmp": "b", "c.txt": "c" });
  await writeTree(join(volumes(), "cam", "other"), { "d.csv": "d" });
  assert.is(await sync(), 0);
  assert.match(await explain(file("b.tmp")), /excluded by the exclude glob "\*\.tmp"$/);
  assert.match(
    await explain(file("c.txt")),
    /excluded: it matches none of the include globs "\*\.csv", "\*\.tmp"$/,
  );
  assert.match(
    await explain(file("a.csv")),
    new RegExp(`: uploaded at ${ISO} as edge/out/a.csv \\(1 B\\)$`),
  );
  assert.match(
    await explain(join(volumes(), "cam", "other", "d.csv")),
    /not in any data path of this device \(they are: cam\/data\)$/,
  );
  await writeTree(join(volumes(), "cam", "data"), { "new.csv": "n" });
  assert.match(
    await explain(file("new.csv")),
    new RegExp(
      `waiting: changed at ${ISO}, not uploaded yet; the next pass sends it as edge/out/new.csv$`,
    ),
  );
  // Changed since its upload: waiting, and the older version is named.
  await writeTree(join(volumes(), "cam", "data"), { "a.csv": "a2" });
  assert.match(
    await explain(file("a.csv")),
    /^.*: waiting: .*; an older version was uploaded at .* as edge\/out\/a\.csv/,
  );
});

test("quiet until a time; held by the bandwidth timetable", async () => {
  const bucket = await newBucket("explain-quiet");
  await configure(bucket, { quietSeconds: 3600 });
  await writeTree(join(volumes(), "cam", "data"), { "a.csv": "a" });
  assert.is(await sync(), 1); // incomplete: a.csv is quiet
  assert.match(
    await explain(file("a.csv")),
    new RegExp(`: quiet until ${ISO}: it changed at ${ISO} and its data path waits 3600 s$`),
  );
  await configure(
    bucket,
    {},
    { bandwidth: { timeZone: "UTC", windows: [{ start: "00:00", bytesPerSecond: 0 }] } },
  );
  assert.match(
    await explain(file("a.csv")),
    /: held: the timetable never opens by the bandwidth timetable$/,
  );
});

test("failed with the error; deleted by retention at a time", async () => {
  const bucket = await newBucket("explain-failed");
  proxy = await startFaultProxy(testEnv.s3.endpoint, {
    errorRate: 0,
    resetRate: 0,
    wrongEtag: true,
  });
  await configure(bucket, {}, { storage: storageFor(bucket, { endpoint: proxy.url }) });
  await writeTree(join(volumes(), "cam", "data"), { "a.csv": "a" });
  await utimes(file("a.csv"), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  assert.is(await sync(), 1);
  assert.match(
    await explain(file("a.csv")),
    new RegExp(`: failed at ${ISO}: .*ETag.* \\(retried on the next scan\\)$`),
  );

  await configure(bucket, { retention: { deleteAfterUpload: true } });
  assert.is(await sync(), 0);
  assert.match(
    await explain(file("a.csv")),
    new RegExp(
      `: deleted by retention at ${ISO.slice(0, -1)}\\.\\d{3}Z, once confirmed in the bucket as out/a.csv$`,
    ),
  );
  assert.match(
    await explain(file("never.csv")),
    /does not exist \(and retention has no record of deleting it\)$/,
  );
});

test.run();

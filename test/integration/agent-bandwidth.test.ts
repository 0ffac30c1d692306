/**
 * The bandwidth timetable (config `bandwidth`): while a window holds, the S3 server sees no
 * upload request; when the next window opens, uploads start within its jitter; a timetable
 * changed in the config applies without a restart. Real agent (config file), real S3 server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { runAgent } from "../support/agent-cli";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { eventually } from "../support/eventually";
import { listKeys, newBucket, serverRequestDetails } from "../support/s3";
import type { DeviceConfigInput } from "../../agent/config/device-config";
import { readFileSync } from "node:fs";
import { testEnv } from "../support/env";
import { jitterMs } from "../../agent/sync/bandwidth-window";

const device = testDevice(test, "agent-bandwidth");
const { args, source } = device;
const configure = (bucket: string, bandwidth: DeviceConfigInput["bandwidth"]) =>
  device.configure(bucket, {}, { bandwidth });
const UPLOADS = ["s3_PutObject", "s3_UploadPart", "s3_CreateMultipartUpload"];
const uploads = (bucket: string) =>
  serverRequestDetails(bucket).filter(r => UPLOADS.includes(r.op));
const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);

/** When the server logged the first upload request for `bucket` (to the second). */
function firstUploadAt(bucket: string): number {
  const log = readFileSync(join(testEnv.logDir, "s3-access.log"), "utf8");
  for (const line of log.split("\n")) {
    const f = line.split(" ");
    if (f[1] !== bucket || !UPLOADS.includes(f[7])) continue;
    const [, day, month, year, h, m, s] = /\[(\d+)\/(\w+)\/(\d+):(\d+):(\d+):(\d+)/.exec(line)!;
    return Date.parse(`${day} ${month} ${year} ${h}:${m}:${s} UTC`);
  }
  return NaN;
}

test("a hold sends nothing; the next window opens within its jitter", async () => {
  const bucket = await newBucket("bandwidth-hold");
  const now = Date.now();
  const opens = Math.floor(now / 60_000) * 60_000 + 60_000; // the next minute
  const JITTER = 8;
  await configure(bucket, {
    timeZone: "UTC",
    jitterSeconds: JITTER,
    windows: [{ start: hhmm(now), bytesPerSecond: 0 }, { start: hhmm(opens) }],
  });
  await mkdir(source(), { recursive: true });
  const running = device.start();
  await writeTree(source(), { "a.csv": "a", "b.csv": "b" });
  await eventually("the hold logged", async () =>
    running.logs().includes(`"reason":"held until `) ? true : undefined,
  );
  const held = /"reason":"held until (\d\d:\d\d) \(UTC\)"/.exec(running.logs())![1];
  assert.ok(held >= hhmm(opens), `held until ${held}`);
  // The sync --once of an operator is held too.
  const once = await runAgent([
    "sync",
    "--once",
    ...args(),
    "--state-dir",
    join(device.root, "state2"),
  ]);
  assert.is(once.status, 1);
  assert.match(once.stderr, /held until \d\d:\d\d \(UTC\)/);
  await eventually(
    "the uploads",
    async () => ((await listKeys(bucket)).size === 2 ? true : undefined),
    90_000,
  );
  // The log's times are cut to the second: a request at or after the opening is logged at or after it.
  const first = firstUploadAt(bucket);
  assert.ok(
    first >= opens,
    `first upload at ${new Date(first).toISOString()}, before ${new Date(opens).toISOString()}`,
  );
  assert.ok(
    first <= opens + (JITTER + 3) * 1000,
    `first upload at ${new Date(first).toISOString()}`,
  );
  assert.is(uploads(bucket).length, 2);
  const jitter = jitterMs(
    "edge/test-device",
    new Date(opens).toISOString().slice(0, 10),
    hhmm(opens),
    JITTER,
  );
  assert.ok(first >= opens + jitter - 1000, "not before this device's own jitter");
  process.stdout.write(
    `\n  bandwidth: window opened ${new Date(opens).toISOString()}, this device's jitter ${(jitter / 1000).toFixed(1)} s, first upload logged ${((first - opens) / 1000).toFixed(0)} s after the opening\n`,
  );
});

test("a timetable changed in the config applies without a restart", async () => {
  const bucket = await newBucket("bandwidth-edit");
  await configure(bucket, {
    timeZone: "Europe/Paris",
    jitterSeconds: 0,
    windows: [{ start: "00:00", bytesPerSecond: 0 }],
  });
  await writeTree(source(), { "a.csv": "a" });
  const running = device.start();
  await eventually("the hold logged", async () =>
    running.logs().includes("held: the timetable never opens") ? true : undefined,
  );
  await new Promise(resolve => setTimeout(resolve, 1500));
  assert.equal(uploads(bucket), [], "no upload request while held");
  const pid = running.child.pid;
  await configure(bucket, {
    timeZone: "Europe/Paris",
    jitterSeconds: 0,
    windows: [{ start: "00:00", bytesPerSecond: 1_000_000 }],
  });
  await eventually("the upload", async () =>
    (await listKeys(bucket)).has("out/a.csv") ? true : undefined,
  );
  assert.is(running.child.pid, pid);
  assert.is(running.child.exitCode, null, "the same process");
});

test.run();

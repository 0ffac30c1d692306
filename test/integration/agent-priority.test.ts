/**
 * Which files go first when the link is the bottleneck: a data path's priority (higher first,
 * also over an upload already under way, within one part) and its order (oldest or newest
 * first). Real agent with --max-rate, real S3 server; the order is read from the server's log.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import { mkdir, rm, utimes } from "node:fs/promises";
import { join } from "node:path";
import { runAgent } from "../support/agent-cli";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { eventually } from "../support/eventually";
import type { DataPath } from "../../agent/config/device-config";
import { listKeys, newBucket, serverRequestDetails, type ServerRequest } from "../support/s3";

const device = testDevice(test, "agent-priority");
const { args, volumes } = device;
const configure = (bucket: string, paths: DataPath[]) =>
  device.configure(bucket, {}, { workloads: [{ name: "cam", paths }] });
const done = (r: ServerRequest) =>
  r.status === 200 && ["s3_PutObject", "s3_CompleteMultipartUpload"].includes(r.op);
const files = (prefix: string, n: number, size: number) =>
  Object.fromEntries(
    Array.from({ length: n }, (_, i) => [
      `${prefix}${String(i).padStart(3, "0")}.bin`,
      randomBytes(size),
    ]),
  );

test("10 high-priority files written after 100 low-priority ones are all in before the low ones finish", async () => {
  const bucket = await newBucket("priority");
  await configure(bucket, [
    { source: "low", target: "low" },
    { source: "high", target: "high", priority: 10 },
  ]);
  await mkdir(join(volumes(), "cam", "high"), { recursive: true });
  await mkdir(join(volumes(), "cam", "low"), { recursive: true });
  const running = device.start("--max-rate", "1M", "--interval", "600");
  await eventually("the agent watching", async () =>
    /following file events/.test(running.logs()) ? true : undefined,
  );
  await writeTree(join(volumes(), "cam", "low"), files("l", 100, 40_000));
  await eventually("a few low files in", async () =>
    serverRequestDetails(bucket).filter(done).length >= 5 ? true : undefined,
  );
  await writeTree(join(volumes(), "cam", "high"), files("h", 10, 10_000));
  await eventually(
    "every file in",
    async () => ((await listKeys(bucket)).size === 110 ? true : undefined),
    60_000,
  );
  const puts = serverRequestDetails(bucket).filter(done);
  const lastOf = (prefix: string) => puts.map(r => r.key.startsWith(prefix)).lastIndexOf(true);
  const lastHigh = lastOf("high/");
  const lastLow = lastOf("low/");
  const lowAfter = puts.slice(lastHigh + 1).filter(r => r.key.startsWith("low/")).length;
  assert.ok(lastHigh < lastLow, "the last high file went in before the last low one");
  assert.ok(lowAfter >= 20, `low files left when the high ones were in: ${lowAfter}`);
  process.stdout.write(`\n  priority: ${lowAfter} of 100 low files went after the last high one\n`);
});

test("a high-priority file overtakes a large low-priority upload under way within one part", async () => {
  const bucket = await newBucket("priority-part");
  await configure(bucket, [
    { source: "low", target: "low" },
    { source: "high", target: "high", priority: 1 },
  ]);
  await mkdir(join(volumes(), "cam", "high"), { recursive: true });
  await writeTree(join(volumes(), "cam", "low"), { "big.bin": randomBytes(30 * 1024 * 1024) });
  device.start("--max-rate", "4M", "--part-size", "5", "--interval", "600");
  await eventually("two parts of the large file in", async () =>
    serverRequestDetails(bucket).filter(r => r.op === "s3_UploadPart" && r.status === 200).length >=
    2
      ? true
      : undefined,
  );
  const partsBefore = serverRequestDetails(bucket).filter(r => r.op === "s3_UploadPart").length;
  await writeTree(join(volumes(), "cam", "high"), { "alert.json": "{}" });
  await eventually(
    "the high file in",
    async () => ((await listKeys(bucket)).has("high/alert.json") ? true : undefined),
    30_000,
  );
  const log = serverRequestDetails(bucket);
  const highAt = log.findIndex(r => r.key === "high/alert.json" && done(r));
  const partsBetween =
    log.slice(0, highAt).filter(r => r.op === "s3_UploadPart").length - partsBefore;
  assert.ok(
    partsBetween <= 1,
    `parts of the large file sent before the high file: ${partsBetween}`,
  );
  process.stdout.write(
    `  priority: ${partsBetween} part(s) of the large file went before the high file\n`,
  );
  assert.not.ok(
    log.slice(0, highAt).some(r => r.op === "s3_CompleteMultipartUpload"),
    "the large file was still going",
  );
  await eventually(
    "the large file in",
    async () => ((await listKeys(bucket)).has("low/big.bin") ? true : undefined),
    60_000,
  );
});

test("order: oldest-first and newest-first by modification time", async () => {
  for (const order of ["oldest-first", "newest-first"] as const) {
    const bucket = await newBucket(`order-${order}`);
    await configure(bucket, [{ source: "data", target: "out", order }]);
    const dir = join(volumes(), "cam", "data");
    await rm(join(device.root, "state"), { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    // Names in the reverse of their age, so that neither name nor creation order gives the answer.
    const names = ["e", "d", "c", "b", "a"].map(n => `${n}.txt`);
    await writeTree(dir, Object.fromEntries(names.map(n => [n, n])));
    for (const [i, name] of names.entries())
      await utimes(join(dir, name), 1_700_000_000 + i * 60, 1_700_000_000 + i * 60);
    const run = await runAgent(["sync", "--once", ...args("--concurrency", "1")]);
    assert.is(run.status, 0, run.stderr);
    const sent = serverRequestDetails(bucket)
      .filter(done)
      .map(r => r.key.slice(4));
    assert.equal(sent, order === "oldest-first" ? names : [...names].reverse(), order);
  }
});

test.run();

/**
 * Stalls are visible: with stallAfterSeconds set, the agent counts waiting files on its own
 * timer, so files written while no pass runs (events off, a very long interval) show as a
 * growing age of the oldest waiting file (a metric) and as a stall (log, and status). Real agent,
 * real S3 server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { startAgent, storageFor, writeConfig, type RunningAgent } from "../support/agent-cli";
import { tempDir, writeTree } from "../support/device-files";
import { eventually } from "../support/eventually";
import { listKeys, newBucket } from "../support/s3";

let root = "";
let running: RunningAgent | undefined;

test.before.each(async () => {
  root = await tempDir("agent-stall");
});
test.after.each(async () => {
  await running?.stop();
  running = undefined;
  await rm(root, { recursive: true, force: true });
});

const source = () => join(root, "volumes", "cam", "data");
const metric = async (textfile: string) =>
  Number(
    /^flotta_agent_oldest_waiting_seconds (\d+)$/m.exec(
      await readFile(textfile, "utf8").catch(() => ""),
    )?.[1] ?? NaN,
  );

test("files written while no pass runs raise the stall, with the age of the oldest", async () => {
  const bucket = await newBucket("stall");
  await writeConfig(join(root, "config.json"), {
    storage: storageFor(bucket),
    workloads: [{ name: "cam", paths: [{ source: "data", target: "out" }] }],
    stallAfterSeconds: 10,
  });
  await mkdir(source(), { recursive: true });
  await writeTree(source(), { "first.csv": "1" });
  const textfile = join(root, "metrics.prom");
  running = startAgent([
    "--config",
    join(root, "config.json"),
    "--volumes-dir",
    join(root, "volumes"),
    "--state-dir",
    join(root, "state"),
    "--no-events",
    "--interval",
    "3600",
    "--metrics-textfile",
    textfile,
  ]);
  await eventually("the first file", async () =>
    (await listKeys(bucket)).size === 1 ? true : undefined,
  );
  await eventually("a census with nothing waiting", async () =>
    (await metric(textfile)) === 0 ? true : undefined,
  );
  assert.not.match(running.logs(), /uploads stalled/);
  await writeTree(source(), { "second.csv": "2", "third.csv": "3" });
  await eventually("the stall", async () =>
    /"msg":"uploads stalled"/.test(running!.logs()) ? true : undefined,
  );
  assert.match(
    running.logs(),
    /the oldest of 2 waiting files changed at .*, over 10 s ago, and is not in the bucket/,
  );
  assert.ok((await metric(textfile)) >= 10, `oldest waiting ${await metric(textfile)} s`);
  assert.equal([...(await listKeys(bucket)).keys()], ["out/first.csv"], "no pass ran meanwhile");
});

test.run();

/**
 * What a data path uploads and when (include/exclude globs, quietSeconds), where it lands (the
 * device's keyPrefix), what the agent says it delivered (`status --files`), and its metrics
 * (`--metrics-address`, `--metrics-textfile`) after a known pass. Real agent, real S3 server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { runAgent, storageFor } from "../support/agent-cli";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { eventually } from "../support/eventually";
import { listKeys, newBucket } from "../support/s3";

const device = testDevice(test, "agent-filters");
const { configure, source } = device;
const syncOnce = () => runAgent(["sync", "--once", ...device.args()]);
const keys = async (bucket: string) => [...(await listKeys(bucket)).keys()].sort();

const TREE = {
  "a.csv": "a",
  "b.tmp": "b",
  ".~lock.a.csv#": "lock",
  "notes.txt": "notes",
  "sub/c.csv": "c",
  "sub/d.tmp": "d",
  "cache/e.csv": "e",
};

test("exclude globs leave out temp files, lock files and whole folders", async () => {
  const bucket = await newBucket("filters-exclude");
  await configure(bucket, { exclude: ["*.tmp", ".~*", "cache"] });
  await writeTree(source(), TREE);
  const run = await syncOnce();
  assert.is(run.status, 0, run.stderr);
  assert.equal(await keys(bucket), ["out/a.csv", "out/notes.txt", "out/sub/c.csv"]);
});

test("include globs pick files by name at any depth or by path; exclude wins", async () => {
  const bucket = await newBucket("filters-include");
  await configure(bucket, { include: ["*.csv", "notes.*"], exclude: ["cache/**"] });
  await writeTree(source(), TREE);
  const run = await syncOnce();
  assert.is(run.status, 0, run.stderr);
  assert.equal(await keys(bucket), ["out/a.csv", "out/notes.txt", "out/sub/c.csv"]);
  // A path glob (with /) is anchored at the source folder.
  const bucket2 = await newBucket("filters-path");
  await configure(bucket2, { include: ["sub/*.csv"] });
  assert.is((await syncOnce()).status, 0);
  assert.equal(await keys(bucket2), ["out/sub/c.csv"]);
});

test("a file changed within quietSeconds waits for a later pass, then goes up whole", async () => {
  const bucket = await newBucket("filters-quiet");
  await configure(bucket, { quietSeconds: 2 });
  await writeTree(source(), { "settled.csv": "old" });
  // settled.csv has been quiet for 2 s when fresh.csv is written.
  await new Promise(resolve => setTimeout(resolve, 2100));
  await writeFile(join(source(), "fresh.csv"), "half");
  const first = await syncOnce();
  assert.is(first.status, 1, "a run with a file still quieting is not complete");
  assert.match(first.stdout, /1 waiting for their quiet period/);
  assert.equal(await keys(bucket), ["out/settled.csv"]);
  await writeFile(join(source(), "fresh.csv"), "half and the rest");
  await new Promise(resolve => setTimeout(resolve, 2100));
  const second = await syncOnce();
  assert.is(second.status, 0, second.stdout + second.stderr);
  assert.equal(await keys(bucket), ["out/fresh.csv", "out/settled.csv"]);
});

test("run: a quiet file is sent once it has been quiet, with no further event", async () => {
  const bucket = await newBucket("filters-quiet-run");
  await configure(bucket, { quietSeconds: 2 });
  await mkdir(source(), { recursive: true });
  const running = device.start("--interval", "600", "--rescan", "600", "--log-level", "debug");
  await eventually("the agent follows events", () =>
    /following file events/.test(running.logs()) ? true : undefined,
  );
  await writeFile(join(source(), "late.csv"), "complete");
  await eventually("a pass that leaves it quieting", () =>
    /"quiet":1/.test(running.logs()) ? true : undefined,
  );
  assert.equal(await keys(bucket), []);
  await eventually("late.csv in the bucket", async () =>
    (await keys(bucket)).includes("out/late.csv") ? true : undefined,
  );
});

test("keyPrefix goes before every key; status --files lists what was delivered", async () => {
  const bucket = await newBucket("filters-prefix");
  await configure(bucket, {}, { keyPrefix: "edge/cam-1" });
  await writeTree(source(), { "a.csv": "a", "sub/b.csv": "bb" });
  assert.is((await syncOnce()).status, 0);
  assert.equal(await keys(bucket), ["edge/cam-1/out/a.csv", "edge/cam-1/out/sub/b.csv"]);

  const status = await runAgent(["status", "--files", "--state-dir", join(device.root, "state")]);
  assert.is(status.status, 0, status.stderr);
  const lines = status.stdout.trim().split("\n");
  assert.is(lines[0], "destination\tkey\tsize\thash\tconfirmed\tstored");
  const rows = lines.slice(1).map(l => l.split("\t"));
  const md5 = (s: string) => `md5:${createHash("md5").update(s).digest("hex")}`;
  assert.equal(rows.map(r => [r[1], r[2], r[3]]).sort(), [
    ["edge/cam-1/out/a.csv", "1", md5("a")],
    ["edge/cam-1/out/sub/b.csv", "2", md5("bb")],
  ]);
  for (const r of rows) {
    assert.is(r[0], `${storageFor(bucket).endpoint}/${bucket}`);
    assert.ok(Math.abs(Date.parse(r[4]) - Date.now()) < 600_000, r[4]);
  }
  const future = await runAgent([
    "status",
    "--files",
    "--since",
    "2999-01-01",
    "--state-dir",
    join(device.root, "state"),
  ]);
  assert.is(future.stdout.trim(), "destination\tkey\tsize\thash\tconfirmed\tstored");
  // A name the workload chose to hold a terminal escape is printed escaped, never raw.
  await writeTree(source(), { "evil\u001b[2J\u009b.csv": "x" });
  assert.is((await syncOnce()).status, 0);
  const listed = await runAgent(["status", "--files", "--state-dir", join(device.root, "state")]);
  // eslint-disable-next-line no-control-regex -- the raw characters must not appear
  assert.not.match(listed.stdout, /[\u001b\u009b]/);
  assert.match(listed.stdout, /"edge\/cam-1\/out\/evil\\u001b\[2J\\u009b\.csv"\t1\t/);
  const bad = await runAgent(["status", "--files", "--since", "yesterday"]);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--since must be an ISO 8601 time/);
});

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise(resolve => server.close(resolve));
  return port;
}

/** `name{labels} value` lines as a map. */
const samples = (text: string) =>
  new Map(
    text
      .split("\n")
      .filter(l => l && !l.startsWith("#"))
      .map(l => {
        const at = l.lastIndexOf(" ");
        return [l.slice(0, at), Number(l.slice(at + 1))] as const;
      }),
  );

test("metrics: served at --metrics-address and written to --metrics-textfile after a known pass", async () => {
  const bucket = await newBucket("filters-metrics");
  await configure(bucket, { exclude: ["*.tmp"], quietSeconds: 0 });
  await writeTree(source(), { "a.csv": "12345", "sub/b.csv": "123", "c.tmp": "x" });
  const port = await freePort();
  const textfile = join(device.root, "flotta-agent.prom");
  device.start("--metrics-address", `127.0.0.1:${port}`, "--metrics-textfile", textfile);
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
    return res?.ok ? samples(await res.text()) : undefined;
  };
  const m = await eventually("a scrape after the first pass", async () => {
    const s = await scrape();
    return s?.get('flotta_agent_files_sent_total{workload="cam"}') === 2 ? s : undefined;
  });
  assert.is(m.get('flotta_agent_bytes_sent_total{workload="cam"}'), 8);
  assert.is(m.get('flotta_agent_upload_failures_total{workload="cam"}'), 0);
  assert.is(m.get("flotta_agent_files_waiting"), 0);
  assert.is(m.get("flotta_agent_index_files"), 2);
  assert.ok(m.get("flotta_agent_index_bytes")! > 0);
  assert.ok(m.get('flotta_agent_passes_total{kind="scan",result="ok"}')! >= 1);
  assert.ok(m.get('flotta_agent_pass_duration_seconds_count{kind="scan"}')! >= 1);
  const lastSync = m.get('flotta_agent_last_success_timestamp_seconds{workload="cam"}')!;
  assert.ok(Math.abs(lastSync - Date.now() / 1000) < 600, String(lastSync));
  const file = samples(await readFile(textfile, "utf8"));
  assert.is(file.get('flotta_agent_files_sent_total{workload="cam"}'), 2);
  assert.is((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
});

test.run();

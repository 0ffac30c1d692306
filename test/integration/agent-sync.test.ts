/**
 * The agent against the real S3 server, driven as a device runs it (`flotta-agent sync --once`,
 * a new process each time, so every pass is also a restart). The bucket is compared byte for
 * byte with the device's files; requests are counted in the server's access log.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import { rm, unlink, utimes, writeFile, appendFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { runAgent, storageFor, writeConfig } from "../support/agent-cli";
import { readTree, tempDir, writeTree } from "../support/device-files";
import { getObject, listKeys, newBucket, requestsDuring } from "../support/s3";

const MiB = 1024 * 1024;
let root = "";
let volumes = "";
let state = "";
let configFile = "";
let bucket = "";
const source = () => join(volumes, "os-stats", "stats");
const sync = () =>
  runAgent([
    "sync",
    "--once",
    "--config",
    configFile,
    "--volumes-dir",
    volumes,
    "--state-dir",
    state,
    "--part-size",
    "5",
  ]);

async function assertBucketMatchesSource(b = bucket, prefix = "statistics/") {
  const local = await readTree(source());
  const remote = await listKeys(b);
  assert.equal(
    [...remote.keys()].sort(),
    [...local.keys()].map(k => prefix + k).sort(),
    "bucket keys = device files",
  );
  for (const [path, bytes] of local) {
    assert.ok((await getObject(b, prefix + path)).equals(bytes), `${path}: bytes differ`);
  }
}

test.before(async () => {
  root = await tempDir("agent-sync");
  volumes = join(root, "volumes");
  state = join(root, "state");
  configFile = join(root, "config.json");
  bucket = await newBucket("agent-sync");
  await writeConfig(configFile, {
    storage: storageFor(bucket),
    workloads: [{ name: "os-stats", paths: [{ source: "stats", target: "statistics" }] }],
  });
  await writeTree(source(), {
    "cpu.json": '{"cpu": 0.5}',
    "nested/deeper/mem.json": '{"mem": 1}',
    "empty.txt": "",
    "big.bin": randomBytes(12 * MiB + 7), // over the 5 MiB part size: a multipart upload
    "with space #?%+.txt": "odd",
    "ünïcødé 日本.txt": "unicode",
    "line\nbreak.txt": "newline",
  });
  await writeFile(join(root, "outside-secret"), "never upload");
  await symlink(join(root, "outside-secret"), join(source(), "escape"));
});

test.after(async () => {
  await rm(root, { recursive: true, force: true });
});

test("first sync sends every file, byte for byte, under <target>/", async () => {
  const run = await sync();
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, /^synced: 7 files seen, 7 sent/);
  await assertBucketMatchesSource();
  assert.is(
    (await listKeys(bucket)).get("statistics/big.bin")?.etag.endsWith("-3"),
    true,
    "big.bin went up in parts",
  );
});

test("a second pass with nothing changed makes zero S3 requests (and is a restart)", async () => {
  const requests = await requestsDuring(bucket, async () => {
    const run = await sync();
    assert.is(run.status, 0, run.stderr);
    assert.match(run.stdout, /7 files seen, 0 sent/);
  });
  assert.equal(requests, []);
});

test("a modified file is sent again; touched ones (one of them multipart) are not", async () => {
  await writeFile(join(source(), "cpu.json"), '{"cpu": 0.9}'); // same size, new bytes
  const later = new Date(Date.now() + 5000);
  await utimes(join(source(), "nested/deeper/mem.json"), later, later); // touched only
  await utimes(join(source(), "big.bin"), later, later); // touched only, and sent in parts
  const requests = await requestsDuring(bucket, async () => {
    const run = await sync();
    assert.is(run.status, 0, run.stderr);
    assert.match(run.stdout, /7 files seen, 1 sent/);
  });
  assert.equal(requests, ["s3_PutObject"]);
  assert.is((await getObject(bucket, "statistics/cpu.json")).toString(), '{"cpu": 0.9}');
  // The touch was remembered: the next pass is idle again.
  assert.equal(await requestsDuring(bucket, sync), []);
});

test("status shows what the index knows: files, bytes, last sync per workload", async () => {
  const run = await runAgent(["status", "--state-dir", state]);
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`/${bucket}: 7 files, 12\\.0 MiB`));
  assert.match(
    run.stdout,
    /os-stats: 7 files, 12\.0 MiB, last sync 20\d\d-.*Z, last upload 20\d\d-.*Z/,
  );
});

test("a file removed on the device stays in the bucket", async () => {
  await unlink(join(source(), "empty.txt"));
  const run = await sync();
  assert.is(run.status, 0, run.stderr);
  assert.ok((await listKeys(bucket)).has("statistics/empty.txt"));
  await writeFile(join(source(), "empty.txt"), "");
});

test("with the index wiped, matching objects are adopted, not sent again", async () => {
  await rm(state, { recursive: true });
  const requests = await requestsDuring(bucket, async () => {
    const run = await sync();
    assert.is(run.status, 0, run.stderr);
    assert.match(run.stdout, /0 sent .*7 already in the bucket/);
  });
  assert.equal(requests, ["s3_ListObjectsV2"]);
  assert.equal(await requestsDuring(bucket, sync), [], "adopted files are in the new index");
});

test("a file whose object differs is sent again after an index wipe", async () => {
  await rm(state, { recursive: true });
  await writeFile(join(source(), "cpu.json"), '{"cpu": 0.1}');
  const run = await sync();
  assert.match(run.stdout, /1 sent/);
  await assertBucketMatchesSource();
});

test("a new destination (storage switch) gets every file", async () => {
  const second = await newBucket("agent-sync-b");
  await writeConfig(configFile, {
    storage: storageFor(second),
    workloads: [{ name: "os-stats", paths: [{ source: "stats", target: "statistics" }] }],
  });
  const run = await sync();
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, /7 sent/);
  await assertBucketMatchesSource(second);
  // The first bucket's index is kept: switching back sends only what changed meanwhile.
  await appendFile(join(source(), "cpu.json"), "\n");
  await writeConfig(configFile, {
    storage: storageFor(bucket),
    workloads: [{ name: "os-stats", paths: [{ source: "stats", target: "statistics" }] }],
  });
  const back = await sync();
  assert.match(back.stdout, /1 sent/);
  await assertBucketMatchesSource();
});

test.run();

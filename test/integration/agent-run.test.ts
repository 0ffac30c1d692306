/**
 * `flotta-agent run` as a long-running process: config changes take effect without a restart,
 * bad configs and bad credentials never crash it, a file being written ends complete, TLS works
 * through the config's CA bundle only, and a crash's multipart upload is cleaned up.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { emptyIndex, IndexStore } from "../../agent/sync/index-store";
import {
  runAgent,
  startAgent,
  storageFor,
  writeConfig,
  type RunningAgent,
} from "../support/agent-cli";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { tempDir, writeTree } from "../support/device-files";
import { getObject, listKeys, newBucket, s3 } from "../support/s3";

const workloads = [{ name: "cam", paths: [{ source: "frames", target: "frames" }] }];
let root = "";
let running: RunningAgent | undefined;

test.before.each(async () => {
  root = await tempDir("agent-run");
});
test.after.each(async () => {
  await running?.stop();
  running = undefined;
  await rm(root, { recursive: true, force: true });
});

const dirs = () => ({
  volumes: join(root, "volumes"),
  state: join(root, "state"),
  config: join(root, "config.json"),
});
/** Where this test's device keeps its config, files and state. */
const deviceArgs = () => {
  const d = dirs();
  return ["--config", d.config, "--volumes-dir", d.volumes, "--state-dir", d.state];
};
const syncOnceArgs = () => ["sync", "--once", ...deviceArgs()];
const frames = () => join(dirs().volumes, "cam", "frames");
const start = () => {
  // 5 MiB parts: the 6 MiB file below goes up in parts while it grows.
  running = startAgent([...deviceArgs(), "--interval", "1", "--part-size", "5"]);
  return running;
};
const objectIs = (bucket: string, key: string, content: string) => async () => {
  try {
    return (await getObject(bucket, key)).toString() === content ? true : undefined;
  } catch {
    return undefined;
  }
};

test("a storage switch takes effect without a restart, and the new bucket gets every file", async () => {
  const a = await newBucket("run-a");
  const b = await newBucket("run-b");
  await writeConfig(dirs().config, { storage: storageFor(a), workloads });
  await writeTree(frames(), { "1.txt": "one", "2.txt": "two" });
  start();
  await eventually("files in bucket A", objectIs(a, "frames/2.txt", "two"));
  await writeConfig(dirs().config, { storage: storageFor(b), workloads });
  await eventually("old files in bucket B", objectIs(b, "frames/1.txt", "one"));
  await writeTree(frames(), { "3.txt": "three" });
  await eventually("a new file in bucket B", objectIs(b, "frames/3.txt", "three"));
  assert.not.ok((await listKeys(a)).has("frames/3.txt"), "bucket A got a file after the switch");
});

test("an invalid new config is refused with a reason; the last good one stays in force", async () => {
  const a = await newBucket("run-invalid");
  await writeConfig(dirs().config, { storage: storageFor(a), workloads });
  const agent = start();
  await writeTree(frames(), { "before.txt": "before" });
  await eventually("first file", objectIs(a, "frames/before.txt", "before"));
  await writeFile(dirs().config, JSON.stringify({ version: 1, storage: { bucket: 42 } }));
  await eventually("the refusal in the log", () =>
    agent.logs().includes("keeping the last good config") ? true : undefined,
  );
  assert.match(agent.logs(), /device: Invalid input/);
  await writeTree(frames(), { "after.txt": "after" });
  await eventually("a file written after the bad config", objectIs(a, "frames/after.txt", "after"));
  assert.is(agent.child.exitCode, null, "the agent is still running");
});

test("a file appended to while it is being sent ends complete in the bucket", async () => {
  const a = await newBucket("run-append");
  await writeConfig(dirs().config, { storage: storageFor(a), workloads });
  const path = join(frames(), "growing.log");
  await writeTree(frames(), { "growing.log": randomBytes(6 * 1024 * 1024) }); // over one part
  start();
  for (let i = 0; i < 40; i++) {
    await appendFile(path, randomBytes(64 * 1024 + i));
    await new Promise(resolve => setTimeout(resolve, 50));
  }
  const final = await readFile(path);
  await eventually(
    "the final bytes in the bucket",
    async () =>
      (await getObject(a, "frames/growing.log").catch(() => Buffer.alloc(0))).equals(final)
        ? true
        : undefined,
    60_000,
  );
});

test("wrong credentials: a clear error, no crash, and it recovers when the config is fixed", async () => {
  const a = await newBucket("run-creds");
  await writeConfig(dirs().config, {
    storage: storageFor(a, { secretAccessKey: "wrong-secret-value" }),
    workloads,
  });
  await writeTree(frames(), { "x.txt": "x" });
  const once = await runAgent(syncOnceArgs());
  assert.is(once.status, 1);
  assert.match(once.stderr, /SignatureDoesNotMatch/);
  assert.not.match(
    once.stderr + once.stdout,
    /wrong-secret-value/,
    "a credential reached the output",
  );

  const agent = start();
  await eventually("the error in the log", () =>
    agent.logs().includes("SignatureDoesNotMatch") ? true : undefined,
  );
  assert.is(agent.child.exitCode, null, "the agent is still running");
  await writeConfig(dirs().config, { storage: storageFor(a), workloads });
  await eventually(
    "the file once the credentials are right",
    objectIs(a, "frames/x.txt", "x"),
    60_000,
  );
  assert.not.match(
    agent.logs(),
    /wrong-secret-value|edge-test-secret/,
    "a credential reached the log",
  );
});

test("an S3 outage is waited out: the agent keeps running and sends once the server is back", async () => {
  const a = await newBucket("run-outage");
  await writeConfig(dirs().config, { storage: storageFor(a), workloads });
  await writeTree(frames(), { "kept.txt": "kept" });
  execFileSync("hack/down.sh", ["s3"], { stdio: "ignore" });
  try {
    const agent = start();
    await eventually(
      "the outage in the log",
      () => (agent.logs().includes("ECONNREFUSED") ? true : undefined),
      60_000,
    );
    assert.is(agent.child.exitCode, null, "the agent is still running");
  } finally {
    execFileSync("hack/up.sh", { stdio: "ignore" });
  }
  await eventually("the file after the outage", objectIs(a, "frames/kept.txt", "kept"), 90_000);
});

test("an unreadable config is one clear line and a non-zero exit", async () => {
  const run = await runAgent([
    "sync",
    "--once",
    "--config",
    join(root, "nope.json"),
    "--state-dir",
    dirs().state,
  ]);
  assert.is(run.status, 1);
  assert.match(
    run.stderr,
    new RegExp(
      `flotta-agent: no valid device config yet: cannot read config file ${join(root, "nope.json")}: ENOENT`,
    ),
  );
});

test("a config without storage: the agent waits and says why", async () => {
  await writeConfig(dirs().config, { storage: null, workloads });
  const run = await runAgent(syncOnceArgs());
  assert.is(run.status, 1);
  assert.match(run.stderr, /flotta-agent: the device config has no storage/);
});

test("a TLS endpoint works with the config's CA bundle; without it the agent refuses", async () => {
  const a = await newBucket("run-tls");
  const caBundle = await readFile(testEnv.s3.tlsCaFile, "utf8");
  await writeTree(frames(), { "secure.txt": "over tls" });
  const args = syncOnceArgs();

  await writeConfig(dirs().config, {
    storage: storageFor(a, { endpoint: testEnv.s3.tlsEndpoint }),
    workloads,
  });
  const refused = await runAgent(args);
  assert.is(refused.status, 1);
  assert.match(refused.stderr, /certificate/i);
  assert.not.ok((await listKeys(a)).has("frames/secure.txt"));

  await writeConfig(dirs().config, {
    storage: storageFor(a, { endpoint: testEnv.s3.tlsEndpoint, caBundle }),
    workloads,
  });
  const trusted = await runAgent(args);
  assert.is(trusted.status, 0, trusted.stderr);
  assert.is((await getObject(a, "frames/secure.txt")).toString(), "over tls");
});

test("on a terminal, sync --once shows a progress line; the bandwidth cap holds", async () => {
  const a = await newBucket("run-progress");
  await writeConfig(dirs().config, { storage: storageFor(a), workloads });
  await writeTree(frames(), { "video.bin": randomBytes(48 * 1024 * 1024) });
  // `script` gives the agent a pseudo-terminal, as a person running it by hand has.
  const command = [
    process.execPath,
    "--import",
    "tsx",
    "agent/cli.ts",
    ...syncOnceArgs(),
    "--max-rate",
    "16M",
  ]
    .map(arg => `'${arg}'`)
    .join(" ");
  const started = Date.now();
  const result = spawnSync("script", ["-qec", command, "/dev/null"], {
    encoding: "utf8",
    timeout: 120_000,
  });
  const seconds = (Date.now() - started) / 1000;
  assert.is(result.status, 0, result.stdout);
  assert.match(result.stdout, /sent \d+(\.\d)? MiB in \d+ s \([\d.]+ MiB\/s\)/);
  assert.match(result.stdout, /synced: 1 files seen, 1 sent/);
  // 48 MiB at 16 MiB/s cannot take less than about 2 s (the first second's burst is free).
  assert.ok(seconds >= 2, `48 MiB went out in ${seconds.toFixed(1)} s despite the cap`);
  assert.ok((await getObject(a, "frames/video.bin")).length === 48 * 1024 * 1024);
});

test("a multipart upload left by a crash is aborted on the next start", async () => {
  const a = await newBucket("run-crash");
  const storage = storageFor(a);
  const key = "frames/huge.bin";
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: a, Key: key }));
  await s3.send(
    new UploadPartCommand({
      Bucket: a,
      Key: key,
      UploadId,
      PartNumber: 1,
      Body: randomBytes(5 * 1024 * 1024),
    }),
  );
  // What a crash mid-upload leaves: the upload id in the index, the upload open at the server.
  const index = emptyIndex({ endpoint: storage.endpoint, bucket: a });
  index.pendingUploads[key] = { uploadId: UploadId!, startedAt: new Date().toISOString() };
  await mkdir(dirs().state, { recursive: true });
  await new IndexStore(dirs().state).save(index);
  assert.is((await s3.send(new ListMultipartUploadsCommand({ Bucket: a }))).Uploads?.length, 1);

  await writeConfig(dirs().config, { storage, workloads });
  const run = await runAgent(syncOnceArgs());
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /aborted a multipart upload left by an earlier run/);
  assert.is(
    (await s3.send(new ListMultipartUploadsCommand({ Bucket: a }))).Uploads?.length ?? 0,
    0,
  );
});

test.run();

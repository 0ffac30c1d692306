/**
 * Crashes and bad state dirs, on the real S3 server: the agent killed with SIGKILL at random
 * moments, a torn index, SIGTERM in the middle of a large upload, two agents on one state dir,
 * and a state dir that is full or read-only. What counts is what the server holds and what it
 * received (its access log), not what the agent says.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  appendFile,
  mkdir,
  open,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  writeFile,
  type FileHandle,
} from "node:fs/promises";
import { connectS3 } from "../../agent/s3/client";
import { describeError } from "../../agent/sync/errors";
import { IndexStore } from "../../agent/sync/index-store";
import { RateLimiter } from "../../agent/sync/rate-limit";
import { transferFile } from "../../agent/sync/transfer";
import { toLocalFile } from "../../agent/sync/walk";
import { join } from "node:path";
import { runAgent, startAgent, storageFor, writeConfig } from "../support/agent-cli";
import { readTree, tempDir, writeTree } from "../support/device-files";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { startFaultProxy } from "../support/fault-proxy";
import {
  getObject,
  listKeys,
  newBucket,
  requestsDuring,
  s3,
  serverRequestDetails,
} from "../support/s3";

const KiB = 1024;
const MiB = 1024 * KiB;
const ROUNDS = process.env.EDGE_LONG_TESTS ? 30 : 10;
let root = "";
let bucket = "";
const volumes = () => join(root, "volumes");
const state = () => join(root, "state");
const source = () => join(volumes(), "cam", "frames");
const device = (stateDir = state()) => [
  "--config",
  join(root, "config.json"),
  "--volumes-dir",
  volumes(),
  "--state-dir",
  stateDir,
  "--part-size",
  "5",
];
const destination = () => ({ endpoint: storageFor(bucket).endpoint, bucket });
const syncOnce = (stateDir = state()) => runAgent(["sync", "--once", ...device(stateDir)]);

async function assertBucketIsSource(): Promise<void> {
  const local = await readTree(source());
  const remote = await listKeys(bucket);
  assert.equal([...remote.keys()].sort(), [...local.keys()].map(k => `frames/${k}`).sort());
  for (const [path, bytes] of local)
    assert.ok((await getObject(bucket, `frames/${path}`)).equals(bytes), `${path} differs`);
}

async function openMultipartUploads(): Promise<string[]> {
  const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map(u => u.Key!);
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

test.before.each(async () => {
  root = await tempDir("agent-crash");
  bucket = await newBucket("crash");
  await writeConfig(join(root, "config.json"), {
    storage: storageFor(bucket),
    workloads: [{ name: "cam", paths: [{ source: "frames", target: "frames" }] }],
  });
});
test.after.each(async () => {
  await rm(root, { recursive: true, force: true });
});

test(`SIGKILL at random moments, ${ROUNDS} rounds of 200 files: the bucket is exact, no upload left open, little sent twice`, async () => {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 196; i++) files[`small/${i}.bin`] = randomBytes(64 * KiB + i);
  for (let i = 0; i < 4; i++) files[`large/${i}.bin`] = randomBytes(11 * MiB + i); // 3 parts
  await writeTree(source(), files);
  const concurrency = 4;
  const multipart = 2; // the agent's multipart uploads at once
  // Bytes are counted on their way into the server, by a proxy that injects no faults.
  const proxy = await startFaultProxy(testEnv.s3.endpoint, { errorRate: 0, resetRate: 0 });
  await writeConfig(join(root, "config.json"), {
    storage: storageFor(bucket, { endpoint: proxy.url }),
    workloads: [{ name: "cam", paths: [{ source: "frames", target: "frames" }] }],
  });
  let crashes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const agent = startAgent([
      ...device(),
      "--interval",
      "1",
      "--concurrency",
      String(concurrency),
      "--max-rate",
      "6M", // so that the whole sync spans the rounds
    ]);
    await sleep(800 + Math.floor(Math.random() * 2500));
    agent.child.kill("SIGKILL");
    await agent.stop();
    if (round > 0 && /did not stop cleanly/.test(agent.logs())) crashes++;
  }
  assert.ok(crashes >= ROUNDS - 2, `only ${crashes} restarts noticed the crash before them`);
  const final = await syncOnce();
  await proxy.stop();
  assert.is(final.status, 0, final.stderr);
  await assertBucketIsSource();
  assert.equal(await openMultipartUploads(), [], "multipart uploads left open");

  // Sent twice: an object completed more than once. Only a file in flight at a kill may be
  // (the server finished it, the agent died before it knew): at most one per worker per kill.
  const completions = new Map<string, number>();
  const bytesReceived = proxy.counts.bodyBytes;
  for (const r of serverRequestDetails(bucket)) {
    if (r.status !== 200) continue;
    if (r.op === "s3_PutObject" || r.op === "s3_CompleteMultipartUpload")
      completions.set(r.key, (completions.get(r.key) ?? 0) + 1);
  }
  const again = [...completions.values()].reduce((n, c) => n + c - 1, 0);
  const total = Object.values(files).reduce((n, b) => n + b.length, 0);
  const inFlightBound = ROUNDS * (multipart * 11 * MiB + concurrency * 65 * KiB);
  console.log(
    `  crash rounds: ${ROUNDS}; objects completed twice: ${again}; bytes received ${bytesReceived} for ${total} (+${(((bytesReceived - total) / total) * 100).toFixed(1)}%)`,
  );
  assert.ok(again <= ROUNDS * concurrency, `${again} objects were completed twice`);
  assert.ok(bytesReceived - total <= inFlightBound, `${bytesReceived - total} bytes sent again`);
});

test("a torn, zero-length or truncated index: the next run adopts what the bucket holds, sends nothing", async () => {
  await writeTree(source(), { "a.txt": "a", "b.bin": randomBytes(7 * MiB), "c/d.txt": "d" });
  assert.is((await syncOnce()).status, 0);
  const [index] = (await readdir(state())).filter(n => /^index-.*\.snap$/.test(n));
  const path = join(state(), index);
  const whole = await readFile(path);
  const damages: [string, () => Promise<void>][] = [
    ["zero-length", () => writeFile(path, "")],
    ["truncated", () => truncate(path, Math.floor(whole.length / 2))],
    ["garbage", () => writeFile(path, randomBytes(200))],
  ];
  for (const [what, damage] of damages) {
    await damage();
    const requests = await requestsDuring(bucket, async () => {
      const run = await syncOnce();
      assert.is(run.status, 0, run.stderr);
      assert.match(run.stdout, /0 sent .*3 already in the bucket/, what);
      assert.match(run.stderr, /index was unreadable/, what);
    });
    assert.equal(requests, ["s3_ListObjectsV2"], what);
  }
});

test("SIGTERM in the middle of a large upload ends the run within 5 s; the next start cleans up", async () => {
  await writeTree(source(), { "big.bin": randomBytes(40 * MiB), "small.txt": "s" });
  const agent = startAgent([...device(), "--interval", "1", "--max-rate", "2M"]);
  await eventually("a multipart upload in flight", async () =>
    (await openMultipartUploads()).length ? true : undefined,
  );
  const asked = Date.now();
  agent.child.kill("SIGTERM");
  // stop() sends a second SIGTERM while the first is being handled: it must change nothing.
  const exit = await Promise.race([agent.stop(), sleep(5000).then(() => "still running")]);
  const took = Date.now() - asked;
  if (exit === "still running") agent.child.kill("SIGKILL");
  assert.is(exit, 0, `after SIGTERM: ${exit} (${took} ms)\n${agent.logs()}`);
  assert.match(agent.logs(), /"stopping"/);
  const run = await syncOnce();
  assert.is(run.status, 0, run.stderr);
  assert.not.match(run.stderr, /did not stop cleanly/, "a SIGTERM is a clean stop");
  assert.match(run.stderr, /stopped during a multipart upload; looking for it to abort/);
  await assertBucketIsSource();
  assert.equal(await openMultipartUploads(), []);
});

/** Waits until a running agent holds the state dir (its lock record is there). */
const lockTaken = () =>
  eventually("the first agent's lock", async () =>
    (await readdir(state()).catch(() => [] as string[])).includes("agent.lock") ? true : undefined,
  );

test("a second agent on the same state dir refuses with a clear message", async () => {
  await writeTree(source(), { "a.txt": "a" });
  const first = startAgent([...device(), "--interval", "1"]);
  try {
    await lockTaken();
    const second = await syncOnce();
    assert.is(second.status, 2);
    assert.match(
      second.stderr,
      new RegExp(`another agent \\(pid ${first.child.pid}\\) uses the state dir`),
    );
  } finally {
    await first.stop();
  }
  assert.not.ok((await readdir(state())).includes("agent.lock"), "a clean stop removes the lock");
  const after = await syncOnce();
  assert.is(after.status, 0, after.stderr);
});

test("a live holder the agent cannot see (another user, ProtectProc=invisible) keeps the lock", async () => {
  await writeTree(source(), { "a.txt": "a" });
  const first = startAgent([...device(), "--interval", "1"]);
  try {
    await lockTaken();
    // What an agent that cannot see the holder's /proc entry reads: a pid it cannot find.
    await writeFile(join(state(), "agent.lock"), JSON.stringify({ pid: 999_999_999, start: "0" }));
    const second = await syncOnce();
    assert.is(
      second.status,
      2,
      `the second agent ran beside the first: ${second.stderr.slice(-300)}`,
    );
    assert.match(second.stderr, /another agent \(pid 999999999\) uses the state dir/);
  } finally {
    await first.stop();
  }
  // Eight agents started at once on a state dir a killed run left: one runs, the rest refuse.
  await writeFile(join(state(), "agent.lock"), JSON.stringify({ pid: 999_999_998, start: "0" }));
  const runs = Array.from({ length: 8 }, () => startAgent([...device(), "--interval", "3600"]));
  try {
    await eventually("all but one to refuse", () =>
      runs.filter(r => r.child.exitCode === 2).length === 7 ? true : undefined,
    );
    await sleep(1000);
    assert.is(runs.filter(r => r.child.exitCode === null).length, 1, "exactly one holds the dir");
  } finally {
    await Promise.all(runs.map(r => r.stop()));
  }
});

test("status reads the state dir and never writes it (no lock, the agent may be running)", async () => {
  await writeTree(source(), { "a.txt": "a" });
  assert.is((await syncOnce()).status, 0);
  await writeTree(source(), { "b.txt": "b" });
  assert.is((await syncOnce()).status, 0); // the second save is a journal record
  const journal = (await readdir(state())).find(n => /^index-.*\.log$/.test(n));
  assert.ok(journal, "a journal");
  // A torn record at the journal's end (a write cut short), and a journal of an older generation.
  await appendFile(join(state(), journal), '0badc0deF{"half');
  const stale = journal.replace(/\.(\d+)\.log$/, (_, g: string) => `.${Number(g) + 7}.log`);
  await writeFile(join(state(), stale), "");
  const before = await listing(state());
  const run = await runAgent(["status", "--state-dir", state()]);
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, /2 files/);
  assert.equal(await listing(state()), before, "status changed the state dir");
});

/** Each file of a folder with its size. */
async function listing(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async n => `${n} ${(await stat(join(dir, n))).size}`));
}

/** A tmpfs of `size` mounted at `dir` (tests run as root, as CI does). */
function mountTmpfs(dir: string, size: string): void {
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
}

test("a full state dir: uploads go on, the index is never torn, no temp files pile up, it is logged", async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`f${i}-${"x".repeat(60)}.txt`] = `file ${i}`;
  await writeTree(source(), files);
  const full = join(root, "full-state");
  await mkdir(full);
  mountTmpfs(full, "16k"); // an index of 300 files does not fit
  try {
    for (let pass = 0; pass < 2; pass++) {
      const run = await syncOnce(full);
      assert.match(run.stderr, /could not save the index; uploads go on.*ENOSPC/);
      for (const name of await readdir(full))
        assert.not.match(name, /\.tmp$/, "a temp file was left behind");
      // The snapshot is whole and the journal ends on a whole record.
      const loaded = await new IndexStore(full).load(destination());
      assert.is(loaded.state, "found");
      assert.is(loaded.state === "found" && loaded.tornRecords, undefined, "a torn journal");
    }
    await assertBucketIsSource();
  } finally {
    execFileSync("umount", [full]);
  }
});

test("a read-only state dir: the agent says so and uploads all the same", async () => {
  await writeTree(source(), { "a.txt": "a", "b.txt": "b" });
  const ro = join(root, "ro-state");
  await mkdir(ro);
  mountTmpfs(ro, "1m");
  execFileSync("mount", ["-o", "remount,ro", ro]);
  try {
    const run = await syncOnce(ro);
    assert.match(run.stderr, /cannot lock the state dir; going on without a lock/);
    assert.match(run.stderr, /could not save the index; uploads go on.*EROFS/);
    await assertBucketIsSource();
  } finally {
    execFileSync("umount", [ro]);
  }
});

test("a file that grows while it is sent: the object is one consistent prefix of it", async () => {
  await writeTree(source(), { "growing.log": randomBytes(6 * MiB) });
  const file = join(source(), "growing.log");
  const writer = spawn(
    "bash",
    ["-c", `while :; do head -c 65536 /dev/urandom >> "${file}"; done`],
    {
      stdio: "ignore",
    },
  );
  let run;
  try {
    run = await syncOnce();
  } finally {
    writer.kill("SIGKILL");
  }
  assert.match(run.stdout, /1 files seen/, run.stderr);
  const object = await getObject(bucket, "frames/growing.log");
  const local = await readFile(file);
  assert.ok(object.length >= 6 * MiB, `only ${object.length} bytes sent`);
  assert.ok(
    local.subarray(0, object.length).equals(object),
    "the object is not a prefix of the file",
  );
});

test("a read error in the middle of a rate-limited upload is a failure, not a crash", async () => {
  const path = join(root, "big.bin");
  await writeFile(path, randomBytes(12 * MiB));
  const handle = await open(path, "r");
  // The disk fails after 6 MiB: the descriptor's reads reject from there on (as EIO would).
  const read = handle.read.bind(handle);
  const failing = Object.assign(Object.create(handle) as FileHandle, {
    read: (buffer: Buffer, offset: number, length: number, position: number) =>
      position >= 6 * MiB
        ? Promise.reject(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" }))
        : read(buffer, offset, length, position),
  });
  const stat = await handle.stat({ bigint: true });
  const file = toLocalFile(Buffer.from(path), Buffer.from(root), "big.bin", stat);
  const { client, putObject, uploadPart } = connectS3(testEnv.s3);
  try {
    await transferFile("frames/big.bin", file, failing, {
      client,
      putObject,
      uploadPart,
      bucket,
      partSize: 5 * MiB,
      queueSize: 2,
      limiter: new RateLimiter(8 * MiB),
    }).then(
      () => assert.unreachable("the upload succeeded"),
      (err: Error) => assert.match(describeError(err), /EIO/),
    );
  } finally {
    await handle.close();
    client.destroy();
  }
  assert.equal(await openMultipartUploads(), [], "the failed upload was not aborted");
  assert.not.ok((await listKeys(bucket)).has("frames/big.bin"));
});

test.run();

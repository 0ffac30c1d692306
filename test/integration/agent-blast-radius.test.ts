/**
 * Issue 19, on the agent: whatever one data path's tree, names or globs do, the other paths of
 * the device keep uploading, no two files share an object, and the device touches only its own
 * keys in the bucket. Each test is an attack a workload (or an EdgeWorkload author) can make,
 * against the real agent and the real S3 server; each failed on the code before the issue.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  type MultipartUpload,
} from "@aws-sdk/client-s3";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runAgent, storageFor } from "../support/agent-cli";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { startFaultProxy } from "../support/fault-proxy";
import { getObject, listKeys, newBucket, s3 } from "../support/s3";

const device = testDevice(test, "agent-blast");
const { volumes } = device;
const syncOnce = (timeoutMs?: number) =>
  runAgent(["sync", "--once", ...device.args()], { timeoutMs });
const keys = async (bucket: string) => [...(await listKeys(bucket)).keys()].sort();

/** Two workloads: `cam` with the path under attack, `ok` beside it, healthy. */
async function configure(bucket: string, path: Record<string, unknown>, more = {}) {
  await device.configure(
    bucket,
    {},
    {
      workloads: [
        { name: "cam", paths: [{ source: "data", target: "cam", ...path }] },
        { name: "ok", paths: [{ source: "data", target: "ok" }] },
      ],
      ...more,
    },
  );
  await writeTree(join(volumes(), "ok", "data"), { "fine.txt": "fine" });
}

test("a glob a backtracking matcher takes minutes over: the pass ends, both paths upload", async () => {
  const bucket = await newBucket("blast-glob");
  await configure(bucket, { include: ["*_*_*_*_*.csv"] });
  const files: Record<string, string> = { "1_2_3_4_5.csv": "wanted" };
  // Each takes a backtracking matcher about 14 s (250 underscores; 150 took 1.8 s).
  for (let i = 0; i < 6; i++) files[`${i}${"_".repeat(245)}.txt`] = "not wanted";
  await writeTree(join(volumes(), "cam", "data"), files);
  const run = await syncOnce(30_000);
  assert.is(run.status, 0, `killed after 30 s, or failed: ${run.stderr.slice(-500)}`);
  assert.equal(await keys(bucket), ["cam/1_2_3_4_5.csv", "ok/fine.txt"]);
});

test("an invalid glob is refused with its field named, before any pass", async () => {
  const bucket = await newBucket("blast-badglob");
  await configure(bucket, { exclude: ["*.[z-a]"] });
  const run = await syncOnce();
  assert.is.not(run.status, 0);
  assert.match(run.stderr, /workloads\[0\]\.paths\[0\]\.exclude\[0\]: has a range \[z-a\]/);
});

test("a folder past PATH_MAX fails alone: the rest of its path and the other paths upload", async () => {
  const bucket = await newBucket("blast-deep");
  await configure(bucket, {});
  const data = join(volumes(), "cam", "data");
  await writeTree(data, { "top.txt": "top" });
  // 18 nested folders of 250-character names: 4,500 bytes, past PATH_MAX (made by relative cd).
  execFileSync("bash", [
    "-c",
    `cd "$1" && for i in $(seq 18); do n=$(printf 'd%.0s' $(seq 250)); mkdir "$n" && cd "$n"; done && echo deep > deep.txt`,
    "-",
    data,
  ]);
  const run = await syncOnce();
  assert.equal(await keys(bucket), ["cam/top.txt", "ok/fine.txt"]);
  assert.match(run.stderr, /cannot read local path.*(ENAMETOOLONG|name too long)/);
});

test("a name that is not UTF-8 and the name of its escape are two objects, each exact", async () => {
  const bucket = await newBucket("blast-names");
  await configure(bucket, {});
  const data = join(volumes(), "cam", "data");
  await mkdir(data, { recursive: true });
  await writeFile(Buffer.from(`${data}/caf\xe9.txt`, "latin1"), "latin-1 name");
  await writeFile(join(data, "caf%E9.txt"), "a name with a percent sign");
  await writeFile(join(data, "100%.txt"), "an ordinary name keeps its key");
  const first = await syncOnce();
  assert.is(first.status, 0, first.stderr);
  assert.equal(await keys(bucket), [
    "cam/100%.txt",
    "cam/caf%25E9.txt",
    "cam/caf%E9.txt",
    "ok/fine.txt",
  ]);
  assert.is((await getObject(bucket, "cam/caf%E9.txt")).toString(), "latin-1 name");
  assert.is((await getObject(bucket, "cam/caf%25E9.txt")).toString(), "a name with a percent sign");
  const second = await syncOnce();
  assert.is(second.status, 0, second.stderr);
  assert.not.match(second.stderr, /"sent":[1-9]/, "a second pass sends nothing");
});

test("a target of '.' (the whole bucket) is refused with its field named", async () => {
  const bucket = await newBucket("blast-dot");
  await configure(bucket, { target: "." });
  const run = await syncOnce();
  assert.is.not(run.status, 0);
  assert.match(run.stderr, /workloads\[0\]\.paths\[0\]\.target: must name a folder/);
});

test("a source written with a trailing slash ('data/') syncs like 'data'", async () => {
  const bucket = await newBucket("blast-slash");
  await configure(bucket, { source: "data/" });
  await writeTree(join(volumes(), "cam", "data"), { "a.txt": "a" });
  const run = await syncOnce();
  assert.is(run.status, 0, run.stderr);
  assert.not.match(run.stderr, /symlink/);
  assert.equal(await keys(bucket), ["cam/a.txt", "ok/fine.txt"]);
});

async function openUploads(bucket: string, prefix: string): Promise<MultipartUpload[]> {
  const all: MultipartUpload[] = [];
  let keyMarker: string | undefined;
  do {
    // By key alone (every key here has one upload): versitygw refuses its own upload-id marker.
    const page = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker }),
    );
    all.push(...(page.Uploads ?? []));
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
  } while (keyMarker);
  return all;
}

test("stray uploads: every page of the device's own prefix is cleaned, another device's kept", async () => {
  const bucket = await newBucket("blast-strays");
  await configure(bucket, {}, { resumeUploads: true });
  const create = (key: string) =>
    s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  // More than one page of ListMultipartUploads (1,000) under this device's target.
  for (let i = 0; i < 1010; i += 50)
    await Promise.all(
      Array.from({ length: Math.min(50, 1010 - i) }, (_, j) => create(`cam/left-${i + j}.bin`)),
    );
  await create("other-device/cam/theirs.bin");
  await create("camera/theirs.bin"); // shares the characters "cam", not the folder
  assert.is((await openUploads(bucket, "cam/")).length, 1010);
  const run = await syncOnce(120_000);
  assert.is(run.status, 0, run.stderr.slice(-500));
  assert.is((await openUploads(bucket, "cam/")).length, 0, "every page of strays aborted");
  const others = (await openUploads(bucket, "")).map(u => u.Key).sort();
  assert.equal(others, ["camera/theirs.bin", "other-device/cam/theirs.bin"]);
});

/** The highest resident memory of a process so far (kB), from /proc. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/**
 * `count` entries in one folder, made as hard links to a few empty files (60,000 each, under
 * ext4's limit): a new inode per entry takes minutes on a busy disk, a link a few microseconds.
 */
function manyFiles(folder: string, count: number): void {
  execFileSync("python3", [
    "-c",
    `import os,sys
d,n=sys.argv[1],int(sys.argv[2])
for i in range(n):
    if i % 60000 == 0:
        base=f'{d}/base{i}.dat'; open(base,'w').close()
    else: os.link(base, f'{d}/f{i:07d}.dat')`,
    folder,
    String(count),
  ]);
}

/** Peak resident memory (MiB) of `sync --once` over a folder of `count` files, none wanted. */
async function walkPeak(bucket: string, count: number): Promise<number> {
  execFileSync("rm", ["-rf", join(device.root, "volumes"), join(device.root, "state")]);
  await configure(bucket, { include: ["*.wanted"] });
  const data = join(volumes(), "cam", "data");
  await mkdir(data, { recursive: true });
  manyFiles(data, count);
  await writeFile(join(data, "one.wanted"), "the one wanted file");
  let peak = 0;
  let pid = 0;
  const poll = setInterval(() => {
    if (pid) void peakRss(pid).then(kb => (peak = Math.max(peak, kb)));
  }, 20);
  const run = runAgent(["sync", "--once", ...device.args()], {
    timeoutMs: 600_000,
    onSpawn: child => (pid = child.pid ?? 0),
  });
  const done = await run.finally(() => clearInterval(poll));
  assert.is(done.status, 0, done.stderr.slice(-500));
  assert.match(done.stderr, new RegExp(`"seen":2[,}]`), "the wanted file of each path, no more");
  assert.ok(peak > 0, "the peak was read");
  return peak / 1024;
}

// The test command walks 200,000; EDGE_LONG_TESTS=1 a million.
const MANY = process.env.EDGE_LONG_TESTS ? 1_000_000 : 200_000;

test("a huge folder is listed in batches: memory does not grow with it, and stays under MemoryMax", async () => {
  const bucket = await newBucket("blast-many");
  const small = await walkPeak(bucket, 2_000);
  const large = await walkPeak(bucket, MANY);
  assert.equal(await keys(bucket), ["cam/one.wanted", "ok/fine.txt"]);
  const unit = await readFile("agent/package/flotta-agent.service", "utf8");
  const memoryMax = Number(/^MemoryMax=(\d+)M$/m.exec(unit)![1]);
  process.stdout.write(
    `  peak RSS: ${Math.round(small)} MiB over 2,000 files, ${Math.round(large)} MiB over ${MANY.toLocaleString("en")} in one folder\n`,
  );
  // Listing a whole folder at once holds ~700 B per entry (140 MB for 200,000): batches do not.
  assert.ok(large - small < 48, `grew by ${Math.round(large - small)} MiB`);
  assert.ok(large < memoryMax, `peak ${Math.round(large)} MiB, MemoryMax ${memoryMax} MiB`);
});

test("every PutObject and UploadPart carries Content-MD5; an ETag that is not its MD5 fails", async () => {
  const bucket = await newBucket("blast-md5");
  await configure(bucket, {});
  const files = {
    "small.bin": randomBytes(10_000),
    "medium.bin": randomBytes(1 << 20), // above the small-file read, below one part
    "large.bin": randomBytes(12 << 20), // three parts of 5 MiB
  };
  await writeTree(join(volumes(), "cam", "data"), files);
  const proxy = await startFaultProxy(storageFor(bucket).endpoint, { errorRate: 0, resetRate: 0 });
  const config = JSON.parse(await readFile(join(device.root, "config.json"), "utf8"));
  config.storage.endpoint = proxy.url;
  await writeFile(join(device.root, "config.json"), JSON.stringify(config));
  try {
    const run = await runAgent(["sync", "--once", "--part-size", "5", ...device.args()]);
    assert.is(run.status, 0, run.stderr.slice(-500));
  } finally {
    await proxy.stop();
  }
  const parts = proxy.puts.filter(p => p.query.includes("partNumber="));
  assert.is(parts.length, 3);
  assert.is(proxy.puts.length, 3 + 3, "three PutObjects, three UploadParts");
  assert.equal(
    proxy.puts.filter(p => !p.contentMd5),
    [],
    "each PUT with a body carries Content-MD5",
  );
  for (const [name, data] of Object.entries(files))
    assert.ok((await getObject(bucket, `cam/${name}`)).equals(data), name);

  // A server whose ETags are not the MD5 of what was sent: no file counts as delivered.
  const other = await newBucket("blast-etag");
  const liar = await startFaultProxy(storageFor(other).endpoint, {
    errorRate: 0,
    resetRate: 0,
    wrongEtag: true,
  });
  config.storage = { ...config.storage, endpoint: liar.url, bucket: other };
  await writeFile(join(device.root, "config.json"), JSON.stringify(config));
  await rm(join(device.root, "state"), { recursive: true, force: true });
  try {
    const run = await runAgent(["sync", "--once", "--part-size", "5", ...device.args()]);
    assert.is(run.status, 1);
    for (const what of ["the object", "part \\d+"])
      assert.match(run.stderr, new RegExp(`ETag of ${what} is not the MD5 of the bytes sent`));
    assert.match(run.stderr, /"sent":0/);
  } finally {
    await liar.stop();
  }
});

test.run();

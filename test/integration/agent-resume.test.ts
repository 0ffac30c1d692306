/**
 * Resumed multipart uploads (device config resumeUploads): an upload cut short by a kill goes on
 * from the parts the server holds, each checked against the file; a changed file starts over;
 * stale and unknown uploads are aborted. Bytes are counted from the S3 server's access log: the
 * UploadPart requests it accepted.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { createHash, randomFillSync } from "node:crypto";
import { mkdir, open, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { emptyIndex, IndexStore } from "../../agent/sync/index-store";
import { toLocalFile } from "../../agent/sync/walk";
import { runAgent, startAgent, storageFor, writeConfig } from "../support/agent-cli";
import { tempDir } from "../support/device-files";
import { eventually } from "../support/eventually";
import { newBucket, s3, serverRequestDetails } from "../support/s3";
import { spawn } from "node:child_process";

const MiB = 1024 * 1024;
const PART = 8 * MiB;
let root = "";

test.before.each(async () => {
  root = await tempDir("agent-resume");
});
test.after.each(async () => {
  await rm(root, { recursive: true, force: true });
});

const volumes = () => join(root, "volumes");
const state = () => join(root, "state");
const configPath = () => join(root, "config.json");
const file = (name: string) => join(volumes(), "cam", "video", name);
const args = () => [
  "sync",
  "--once",
  "--config",
  configPath(),
  "--volumes-dir",
  volumes(),
  "--state-dir",
  state(),
  "--part-size",
  String(PART / MiB),
];
const writeResumeConfig = (bucket: string, more: Record<string, unknown> = {}) =>
  writeConfig(configPath(), {
    storage: storageFor(bucket),
    workloads: [{ name: "cam", paths: [{ source: "video", target: "video" }] }],
    resumeUploads: true,
    ...more,
  });

/** Writes `size` bytes of random data, 64 MiB at a time. */
async function writeRandomFile(path: string, size: number): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const handle = await open(path, "w");
  const chunk = Buffer.alloc(64 * MiB);
  try {
    for (let at = 0; at < size; at += chunk.length) {
      randomFillSync(chunk);
      await handle.write(chunk, 0, Math.min(chunk.length, size - at));
    }
  } finally {
    await handle.close();
  }
}

/** The multipart ETag S3 gives a file sent in `partSize` parts. */
async function multipartEtag(path: string, partSize: number): Promise<string> {
  const handle = await open(path, "r");
  const buffer = Buffer.alloc(partSize);
  const digests: Buffer[] = [];
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, partSize, null);
      if (!bytesRead) break;
      digests.push(createHash("md5").update(buffer.subarray(0, bytesRead)).digest());
    }
  } finally {
    await handle.close();
  }
  return `${createHash("md5").update(Buffer.concat(digests)).digest("hex")}-${digests.length}`;
}

/** UploadPart requests the server accepted for `key` (status 200), from its access log. */
const acceptedParts = (bucket: string, key: string) =>
  serverRequestDetails(bucket).filter(
    r => r.op === "s3_UploadPart" && r.key === key && r.status === 200,
  );

const openUploads = async (bucket: string) =>
  (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];

async function assertComplete(bucket: string, key: string, path: string) {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  assert.is(head.ContentLength, (await stat(path)).size);
  assert.is(head.ETag?.replace(/"/g, ""), await multipartEtag(path, PART));
  assert.equal(await openUploads(bucket), []);
}

test("a 2 GiB upload killed at about 60 % sends at most 45 % of the file again", async () => {
  const bucket = await newBucket("resume-2g");
  await writeResumeConfig(bucket);
  const size = 2048 * MiB;
  const parts = size / PART;
  await writeRandomFile(file("big.bin"), size);
  const key = "video/big.bin";

  const [bin, ...rest] = [process.execPath, "--import", "tsx", "agent/cli.ts", ...args()];
  const first = spawn(bin, rest, { stdio: "ignore" });
  const exited = new Promise(resolve => first.on("close", resolve));
  await eventually(
    "60 % of the parts at the server",
    () => acceptedParts(bucket, key).length >= Math.round(parts * 0.6) || undefined,
    180_000,
  );
  first.kill("SIGKILL");
  await exited;
  const sentFirst = acceptedParts(bucket, key).length;
  assert.ok(sentFirst < parts, "the first run finished before the kill");

  const second = await runAgent(args(), { timeoutMs: 300_000 });
  assert.is(second.status, 0, second.stderr);
  assert.match(second.stderr, /resuming a multipart upload/);
  const sentAgain = acceptedParts(bucket, key).length - sentFirst;
  const share = (sentAgain * PART) / size;
  process.stdout.write(
    `  killed after ${sentFirst}/${parts} parts; the resumed run sent ${sentAgain} parts (${(share * 100).toFixed(1)} % of the file)\n`,
  );
  assert.ok(share <= 0.45, `the resumed run sent ${(share * 100).toFixed(1)} % of the file again`);
  await assertComplete(bucket, key, file("big.bin"));
});

test("run stopped by SIGTERM mid-upload (a reboot): the upload is left open, and the next start resumes it", async () => {
  const bucket = await newBucket("resume-term");
  await writeResumeConfig(bucket);
  const size = 30 * PART;
  await writeRandomFile(file("big.bin"), size);
  const key = "video/big.bin";
  const [, , ...syncArgs] = args();
  const running = startAgent([...syncArgs, "--max-rate", "40M"]);
  await eventually("a third of the parts at the server", () =>
    acceptedParts(bucket, key).length >= 10 ? true : undefined,
  );
  assert.is(await running.stop(), 0, running.logs());
  const sentFirst = acceptedParts(bucket, key).length;
  assert.ok(sentFirst < 30, "the upload finished before the stop");
  assert.is((await openUploads(bucket)).length, 1, "the stop aborted the upload");

  const next = await runAgent(args());
  assert.is(next.status, 0, next.stderr);
  assert.match(next.stderr, /resuming a multipart upload/);
  const total = acceptedParts(bucket, key).length;
  assert.ok(total <= 30 + 4, `${total} parts accepted for a 30-part file`);
  await assertComplete(bucket, key, file("big.bin"));
});

/** What a run killed after sending parts 1..`sent` leaves: an open upload, known to the index. */
async function leftOpen(bucket: string, path: string, key: string, sent: number, tamper = false) {
  const { UploadId } = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }),
  );
  const handle = await open(path, "r");
  try {
    for (let part = 1; part <= sent; part++) {
      const body = Buffer.alloc(PART);
      await handle.read(body, 0, PART, (part - 1) * PART);
      if (tamper && part === 1) body[0] ^= 0xff; // same size, other bytes
      await s3.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: part, Body: body }),
      );
    }
  } finally {
    await handle.close();
  }
  const s = await stat(path, { bigint: true });
  const stamps = toLocalFile(Buffer.from(path), Buffer.from(path), key, s);
  const index = emptyIndex({ endpoint: storageFor(bucket).endpoint, bucket });
  index.pendingUploads[key] = {
    uploadId: UploadId!,
    startedAt: new Date().toISOString(),
    size: stamps.size,
    mtimeNs: stamps.mtimeNs,
    ino: stamps.ino,
    partSize: PART,
  };
  await mkdir(state(), { recursive: true });
  await new IndexStore(state()).save(index);
  return UploadId!;
}

test("each part the server holds is checked against the file: a part with other bytes is sent again", async () => {
  const bucket = await newBucket("resume-check");
  await writeResumeConfig(bucket);
  await writeRandomFile(file("clip.bin"), 5 * PART + 123);
  const key = "video/clip.bin";
  await leftOpen(bucket, file("clip.bin"), key, 3, true);
  const before = acceptedParts(bucket, key).length;

  const run = await runAgent(args());
  assert.is(run.status, 0, run.stderr);
  // Parts 2 and 3 are reused; part 1 (tampered), 4, 5 and 6 are sent.
  assert.is(acceptedParts(bucket, key).length - before, 4);
  await assertComplete(bucket, key, file("clip.bin"));
});

test("a file changed since its upload was cut short starts over; the old upload is aborted", async () => {
  const bucket = await newBucket("resume-changed");
  await writeResumeConfig(bucket);
  await writeRandomFile(file("clip.bin"), 4 * PART);
  const key = "video/clip.bin";
  const old = await leftOpen(bucket, file("clip.bin"), key, 2);
  await writeFile(file("clip.bin"), Buffer.alloc(3 * PART, 7)); // rewritten: new size and mtime
  const before = acceptedParts(bucket, key).length;

  const run = await runAgent(args());
  assert.is(run.status, 0, run.stderr);
  assert.is(acceptedParts(bucket, key).length - before, 3);
  await assertComplete(bucket, key, file("clip.bin"));
  const aborted = serverRequestDetails(bucket).filter(r => r.op === "s3_AbortMultipartUpload");
  assert.ok(aborted.length >= 1, `upload ${old} was not aborted`);
});

test("an upload cut short with another part size (--part-size changed) starts over", async () => {
  const bucket = await newBucket("resume-partsize");
  await writeResumeConfig(bucket);
  await writeRandomFile(file("clip.bin"), 3 * PART);
  const key = "video/clip.bin";
  await leftOpen(bucket, file("clip.bin"), key, 2);
  const run = await runAgent([...args().slice(0, -1), "5"]); // 5 MiB parts now
  assert.is(run.status, 0, run.stderr);
  assert.not.match(run.stderr, /resuming a multipart upload/);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  assert.is(head.ETag?.replace(/"/g, ""), await multipartEtag(file("clip.bin"), 5 * MiB));
  assert.equal(await openUploads(bucket), [], "the 8 MiB upload was left open");
});

test("uploads older than abortUploadsAfterHours, and uploads the index does not know, are aborted", async () => {
  const bucket = await newBucket("resume-stale");
  await writeResumeConfig(bucket, { abortUploadsAfterHours: 1 });
  await writeRandomFile(file("clip.bin"), 2 * PART);
  const key = "video/clip.bin";
  await leftOpen(bucket, file("clip.bin"), key, 1);
  // Age the known upload past the limit.
  const store = new IndexStore(state());
  const loaded = await store.load({ endpoint: storageFor(bucket).endpoint, bucket });
  loaded.index.pendingUploads[key].startedAt = new Date(Date.now() - 2 * 3_600_000).toISOString();
  await store.save(loaded.index);
  // And one nobody knows (an index wiped since), under the same prefix.
  await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "video/orphan.bin" }));
  assert.is((await openUploads(bucket)).length, 2);
  const before = acceptedParts(bucket, key).length;

  const run = await runAgent(args());
  assert.is(run.status, 0, run.stderr);
  assert.is(acceptedParts(bucket, key).length - before, 2, "the stale upload was resumed");
  await assertComplete(bucket, key, file("clip.bin"));
});

test("with resumeUploads off (the default), a cut-short upload is aborted and sent whole", async () => {
  const bucket = await newBucket("resume-off");
  await writeResumeConfig(bucket, { resumeUploads: undefined });
  await writeRandomFile(file("clip.bin"), 3 * PART);
  const key = "video/clip.bin";
  await leftOpen(bucket, file("clip.bin"), key, 2);
  const before = acceptedParts(bucket, key).length;

  const run = await runAgent(args());
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /aborted a multipart upload left by an earlier run/);
  assert.is(acceptedParts(bucket, key).length - before, 3);
  await assertComplete(bucket, key, file("clip.bin"));
});

test.run();

/**
 * Compressed data paths (`compression: gzip`): each object is the gzip of its file under the
 * file's key plus `.gz`, says so (Content-Type, metadata with the file's size and MD5), and a
 * device that lost its index sends nothing again. Retention deletes a compressed file only once
 * its object is confirmed. Real agent, real S3 server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { createHash, randomBytes } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { DataPath } from "../../agent/config/device-config";
import { runAgent } from "../support/agent-cli";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { getObject, listKeys, newBucket, s3, serverRequests } from "../support/s3";

const device = testDevice(test, "agent-compression");
const { source } = device;
const args = () => device.args("--part-size", "5");
const configure = (bucket: string, path: Partial<DataPath> = {}) =>
  device.configure(bucket, { compression: "gzip", ...path });
const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");

/** Text-like content (compresses) and random bytes (does not), small and past one part. */
function files(): Record<string, Buffer> {
  const csv = Buffer.from(
    Array.from({ length: 400_000 }, (_, i) => `${i},${(i * 7) % 13},sensor-${i % 5}\n`).join(""),
  );
  return {
    "a.csv": Buffer.from("time,value\n1,2\n"),
    "empty.txt": Buffer.alloc(0),
    "sub/big.csv": csv,
    "noise.bin": randomBytes(12 * 1024 * 1024),
  };
}

test("objects are the gzip of the files, under .gz keys, and say what they hold", async () => {
  const bucket = await newBucket("compress");
  await configure(bucket);
  const written = files();
  await writeTree(source(), written);
  const run = await runAgent(["sync", "--once", ...args()]);
  assert.is(run.status, 0, run.stderr);
  const objects = await listKeys(bucket);
  assert.equal([...objects.keys()].sort(), [
    "out/a.csv.gz",
    "out/empty.txt.gz",
    "out/noise.bin.gz",
    "out/sub/big.csv.gz",
  ]);
  for (const [name, data] of Object.entries(written)) {
    const key = `out/${name}.gz`;
    assert.ok(gunzipSync(await getObject(bucket, key)).equals(data), name);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    assert.is(head.ContentType, "application/gzip", name);
    assert.is(head.ContentEncoding, undefined, name);
    assert.equal(head.Metadata, {
      "flotta-uncompressed-size": `${data.length}`,
      "flotta-uncompressed-md5": md5(data),
    });
  }
  assert.ok(objects.get("out/sub/big.csv.gz")!.size < written["sub/big.csv"].length / 3);
  // Past one part (5 MiB) the compressed stream went in parts.
  assert.match(objects.get("out/noise.bin.gz")!.etag, /-3$/);

  // The delivery record gives both sizes: the file's and the object's.
  const status = await runAgent(["status", "--files", "--state-dir", join(device.root, "state")]);
  const rows = status.stdout
    .trim()
    .split("\n")
    .slice(1)
    .map(l => l.split("\t"));
  const big = rows.find(r => r[1] === "out/sub/big.csv.gz")!;
  assert.is(big[2], `${written["sub/big.csv"].length}`);
  assert.is(big[3], `md5:${md5(written["sub/big.csv"])}`);
  assert.is(big[5], `${objects.get("out/sub/big.csv.gz")!.size}`);
});

test("after a wiped index the objects are adopted: nothing is sent again", async () => {
  const bucket = await newBucket("compress-adopt");
  await configure(bucket);
  await writeTree(source(), files());
  assert.is((await runAgent(["sync", "--once", ...args()])).status, 0);
  const before = serverRequests(bucket).filter(op => /Put|Part|Multipart/.test(op)).length;
  assert.ok(before >= 6, `upload requests counted: ${before}`);
  await rm(join(device.root, "state"), { recursive: true, force: true });
  const again = await runAgent(["sync", "--once", ...args()]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stdout, / 0 sent .* 4 already in the bucket/);
  const after = serverRequests(bucket).filter(op => /Put|Part|Multipart/.test(op)).length;
  assert.is(after, before, "no upload request after the wipe");
  // A changed file is sent again, compressed.
  await writeTree(source(), { "a.csv": "time,value\n1,3\n" });
  assert.is((await runAgent(["sync", "--once", ...args()])).status, 0);
  assert.is(gunzipSync(await getObject(bucket, "out/a.csv.gz")).toString(), "time,value\n1,3\n");
});

test("retention deletes a compressed file once its object is confirmed", async () => {
  const bucket = await newBucket("compress-retain");
  await configure(bucket, { retention: { deleteAfterUpload: true } });
  const written = files();
  await writeTree(source(), written);
  const run = await runAgent(["sync", "--once", ...args()]);
  assert.is(run.status, 0, run.stderr);
  assert.equal(await readdir(source()), ["sub"]);
  for (const [name, data] of Object.entries(written))
    assert.ok(gunzipSync(await getObject(bucket, `out/${name}.gz`)).equals(data), name);
});

test.run();

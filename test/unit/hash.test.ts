import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashFile } from "../../agent/sync/hash";

const md5 = (b: Buffer) => createHash("md5").update(b).digest();

test("whole-file MD5 and S3's multipart ETag", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hash-"));
  const MiB = 1024 * 1024;
  const data = Buffer.alloc(12 * MiB + 5);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const path = join(dir, "f");
  await writeFile(path, data);
  const parts = [
    data.subarray(0, 5 * MiB),
    data.subarray(5 * MiB, 10 * MiB),
    data.subarray(10 * MiB),
  ];
  const expected = `${createHash("md5")
    .update(Buffer.concat(parts.map(md5)))
    .digest("hex")}-3`;
  const handle = await open(path, "r");
  const hashes = await hashFile(handle, data.length, 5 * MiB);
  assert.is(hashes.md5, md5(data).toString("hex"));
  assert.is(hashes.multipartEtag, expected);
  assert.is((await hashFile(handle, data.length)).multipartEtag, undefined);
  assert.is((await hashFile(handle, 0)).md5, md5(Buffer.alloc(0)).toString("hex"));
  await handle.close();
  await rm(dir, { recursive: true });
});

test.run();

/**
 * The S3 server is real and the agent's client settings work with it: a multipart upload and
 * a small one come back byte-identical, wrong credentials are refused, and the TLS endpoint is
 * trusted through the config's CA bundle and only through it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable } from "node:stream";
import { createS3Client } from "../../agent/s3/client";
import { testEnv } from "../support/env";
import { uniqueName } from "../support/names";

const bucket = uniqueName("s3-test");
const client = createS3Client(testEnv.s3);
const MiB = 1024 * 1024;

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function getBytes(key: string): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

test.before(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

test("a 20 MiB streamed multipart upload comes back byte-identical", async () => {
  const data = randomBytes(20 * MiB);
  // A stream body, as the agent sends files: lib-storage cuts it into 5 MiB parts.
  const upload = new Upload({
    client,
    params: {
      Bucket: bucket,
      Key: "big/file.bin",
      Body: Readable.from([data.subarray(0, 7 * MiB), data.subarray(7 * MiB)]),
    },
    partSize: 5 * MiB,
    queueSize: 2,
  });
  await upload.done();
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "big/file.bin" }));
  assert.is(head.ContentLength, data.length);
  assert.match(
    head.ETag ?? "",
    /-4"?$/,
    "a 20 MiB body in 5 MiB parts is a 4-part multipart upload",
  );
  assert.is(sha256(await getBytes("big/file.bin")), sha256(data));
});

test("a 1 KiB upload comes back byte-identical", async () => {
  const data = randomBytes(1024);
  await new Upload({
    client,
    params: { Bucket: bucket, Key: "small.bin", Body: Readable.from([data]) },
  }).done();
  assert.equal(await getBytes("small.bin"), data);
});

test("wrong credentials are refused", async () => {
  const wrong = createS3Client(
    { ...testEnv.s3, secretAccessKey: "wrong-secret" },
    { maxAttempts: 1 },
  );
  try {
    await wrong.send(new ListBucketsCommand({}));
    assert.unreachable("a wrong secret was accepted");
  } catch (err) {
    assert.is((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 403);
  }
});

test("the TLS endpoint works with the CA bundle, and is refused without it", async () => {
  const caBundle = readFileSync(testEnv.s3.tlsCaFile, "utf8");
  const trusting = createS3Client({ ...testEnv.s3, endpoint: testEnv.s3.tlsEndpoint, caBundle });
  const head = await trusting.send(new HeadObjectCommand({ Bucket: bucket, Key: "small.bin" }));
  assert.is(head.ContentLength, 1024);

  const untrusting = createS3Client(
    { ...testEnv.s3, endpoint: testEnv.s3.tlsEndpoint },
    { maxAttempts: 1 },
  );
  try {
    await untrusting.send(new HeadObjectCommand({ Bucket: bucket, Key: "small.bin" }));
    assert.unreachable("a self-signed endpoint was trusted without the CA bundle");
  } catch (err) {
    assert.match(String((err as Error).message ?? err), /certificate/i);
  }
});

test.run();

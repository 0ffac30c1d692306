/**
 * Looking in the bucket as a user does, and counting what reached the S3 server: requests are
 * read from the server's own access log (one line per request, the bucket in field 2), never
 * from the agent's account of itself.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createS3Client } from "../../agent/s3/client";
import { testEnv } from "./env";
import { uniqueName } from "./names";

export const s3 = createS3Client(testEnv.s3);

export async function newBucket(prefix: string): Promise<string> {
  const bucket = uniqueName(prefix);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

export async function listKeys(
  bucket: string,
  client: S3Client = s3,
): Promise<Map<string, { size: number; etag: string }>> {
  const keys = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? [])
      keys.set(o.Key!, { size: o.Size ?? 0, etag: (o.ETag ?? "").replace(/"/g, "") });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export async function getObject(bucket: string, key: string, client = s3): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

/**
 * Every request the S3 server logged for `bucket`, as operation names (s3_PutObject, ...); `log`
 * is the plain endpoint's access log unless the TLS one (s3-tls-access.log) is named.
 */
export function serverRequests(bucket: string, log = "s3-access.log"): string[] {
  const text = readFileSync(join(testEnv.logDir, log), "utf8");
  const ops: string[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    if (fields[1] === bucket) ops.push(fields[7]);
  }
  return ops;
}

export interface ServerRequest {
  op: string;
  key: string;
  status: number;
}

/** Every request the S3 server logged for `bucket`, with its key and status. */
export function serverRequestDetails(bucket: string): ServerRequest[] {
  const log = readFileSync(join(testEnv.logDir, "s3-access.log"), "utf8");
  const out: ServerRequest[] = [];
  // ... bucket [time] ip requester id OP KEY /bucket/uri STATUS ...
  const line = / (s3_\w+) .*? \/([^/ ]+)\/(\S*) (\d{3}) /;
  for (const text of log.split("\n")) {
    const m = line.exec(text);
    if (!m || m[2] !== bucket) continue;
    const key = decodeURIComponent(m[3].split("?")[0]);
    out.push({ op: m[1], key, status: Number(m[4]) });
  }
  return out;
}

/** The requests `bucket` received while `action` ran. */
export async function requestsDuring(
  bucket: string,
  action: () => Promise<unknown>,
): Promise<string[]> {
  const before = serverRequests(bucket).length;
  await action();
  return serverRequests(bucket).slice(before);
}

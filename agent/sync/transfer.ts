/**
 * Sends one file to one key, streaming, and says whether what arrived is the file as it is now.
 *
 * - Up to one part size: read into memory between two stats; if the file changed while it was
 *   read, read again. One PutObject, signed over its exact bytes.
 * - Larger: streamed through @aws-sdk/lib-storage in parts (memory: (queueSize + 1) x partSize);
 *   the server's multipart ETag is kept as the content's fingerprint. The file is stat-ed again
 *   afterwards: if it changed during the upload, the result says so and the caller sends it again.
 * The upload id of a multipart upload is handed to `onMultipartStart` so that a crash can be
 * cleaned up (aborted) on the next start.
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { bareEtag, type Content } from "./compare";
import type { RateLimiter } from "./rate-limit";
import { toLocalFile, type LocalFile } from "./walk";

export interface TransferOptions {
  client: S3Client;
  bucket: string;
  partSize: number;
  queueSize: number;
  limiter: RateLimiter;
  onMultipartStart?: (key: string, uploadId: string) => void;
  onBytes?: (bytes: number) => void;
}

export type TransferResult =
  /** The object now holds exactly the file as described by `file` (its stat after the upload). */
  | { state: "sent"; file: LocalFile; content: Content }
  /** The file changed while it was being sent: the object holds an older version. */
  | { state: "changed"; file: LocalFile; content: Content }
  /** The file disappeared before it could be read. */
  | { state: "vanished" };

const sameStat = (a: LocalFile, b: LocalFile) =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

async function restat(file: LocalFile): Promise<LocalFile | undefined> {
  try {
    return toLocalFile(
      file.absolutePath,
      file.relativePath,
      await stat(file.absolutePath, { bigint: true }),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Reads a small file so that the bytes match one stat of it (a few tries if it is being written). */
async function readConsistently(
  file: LocalFile,
): Promise<{ data: Buffer; file: LocalFile; stable: boolean } | undefined> {
  let before = await restat(file);
  for (let attempt = 0; before; attempt++) {
    const data = await readFile(file.absolutePath);
    const after = await restat(file);
    if (!after) return undefined;
    const stable = sameStat(before, after) && data.length === after.size;
    if (stable || attempt === 4) return { data, file: after, stable };
    before = after;
  }
  return undefined;
}

export async function transferFile(
  key: string,
  file: LocalFile,
  options: TransferOptions,
): Promise<TransferResult> {
  const current = await restat(file);
  if (!current) return { state: "vanished" };
  if (current.size <= options.partSize) return putSmall(key, current, options);
  return uploadLarge(key, current, options);
}

async function putSmall(
  key: string,
  file: LocalFile,
  options: TransferOptions,
): Promise<TransferResult> {
  const read = await readConsistently(file);
  if (!read) return { state: "vanished" };
  await options.limiter.take(read.data.length);
  await options.client.send(
    new PutObjectCommand({
      Bucket: options.bucket,
      Key: key,
      Body: read.data,
      ContentLength: read.data.length,
    }),
  );
  options.onBytes?.(read.data.length);
  const md5 = createHash("md5").update(read.data).digest("hex");
  // A file that never held still while it was read is sent again on a later pass.
  return { state: read.stable ? "sent" : "changed", file: read.file, content: { md5 } };
}

async function uploadLarge(
  key: string,
  file: LocalFile,
  options: TransferOptions,
): Promise<TransferResult> {
  const source = createReadStream(file.absolutePath, { highWaterMark: 1024 * 1024 });
  const body = options.limiter.enabled ? source.pipe(options.limiter.stream()) : source;
  const upload = new Upload({
    client: options.client,
    params: { Bucket: options.bucket, Key: key, Body: body },
    partSize: options.partSize,
    queueSize: options.queueSize,
  });
  let announced = false;
  let reported = 0;
  upload.on("httpUploadProgress", progress => {
    if (!announced && upload.uploadId) {
      announced = true;
      options.onMultipartStart?.(key, upload.uploadId);
    }
    const loaded = progress.loaded ?? reported;
    options.onBytes?.(loaded - reported);
    reported = loaded;
  });
  let etag: string | undefined;
  try {
    etag = (await upload.done()).ETag;
  } catch (err) {
    source.destroy();
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { state: "vanished" };
    throw err;
  }
  const after = await restat(file);
  if (!after) return { state: "vanished" };
  // The server's multipart ETag stands for the content: no second pass over the bytes here.
  const content: Content = etag ? { etag: bareEtag(etag), partSize: options.partSize } : {};
  const changed = !sameStat(file, after);
  return { state: changed ? "changed" : "sent", file: changed ? after : file, content };
}

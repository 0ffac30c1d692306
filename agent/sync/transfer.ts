/**
 * Sends one open file to one key, streaming, and says whether what arrived is the file as it is
 * now. The file is read only through the descriptor the caller opened and checked
 * (confined.ts), never by path, and always exactly the size one fstat gave:
 * - Up to one part size: read into memory between two fstats; if the file changed while it was
 *   read, read again. One PutObject, signed over its exact bytes.
 * - Larger: in parts, queueSize at once, each read into its worker's own buffer (memory:
 *   queueSize x partSize); the part size grows when 10,000 parts would not hold the file, as aws-cli and rclone do.
 *   The server's multipart ETag is kept as the content's fingerprint. The file is fstat-ed again
 *   afterwards: if it changed during the upload, the result says so and the caller sends it again.
 * The upload id of a multipart upload is handed to `onMultipartStart` so that a crash can be
 * cleaned up (aborted) on the next start. An abort signal stops the transfer at once.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { bareEtag, type Content } from "./compare";
import { ChecksumMismatch, type PutObject, type UploadPart } from "../s3/put-object";
import type { RateLimiter } from "./rate-limit";
import { toLocalFile, type LocalFile } from "./walk";

export interface TransferOptions {
  client: S3Client;
  /** PutObject and UploadPart without the SDK's middleware (see s3/put-object.ts). */
  putObject: PutObject;
  uploadPart: UploadPart;
  bucket: string;
  partSize: number;
  queueSize: number;
  limiter: RateLimiter;
  /** The data path's priority: the limiter serves higher ones first. */
  priority?: number;
  signal?: AbortSignal;
  onMultipartStart?: (key: string, uploadId: string, partSize: number) => void;
  onBytes?: (bytes: number) => void;
  /** Continue this multipart upload: parts the server holds that match the file are not sent. */
  resume?: ResumableUpload;
  /** A failed or stopped multipart upload is left open (to be resumed), not aborted. */
  keepOnFailure?: boolean;
}

/** An open multipart upload and the parts the server already holds (ListParts). */
export interface ResumableUpload {
  uploadId: string;
  partSize: number;
  parts: Map<number, { size: number; etag: string }>;
}

export type TransferResult =
  /** The object now holds exactly the file as described by `file` (its stat after the upload). */
  | { state: "sent"; file: LocalFile; content: Content }
  /** The file changed while it was being sent: the object holds an older version. */
  | { state: "changed"; file: LocalFile; content: Content };

/** What a transfer did: the result, and the bytes of parts it reused instead of sending. */
export type Sent = TransferResult & { reusedBytes?: number };

const MiB = 1024 * 1024;
/** S3 allows at most 10,000 parts in one multipart upload. */
export const MAX_PARTS = 10_000;

/** The part size for a file: the configured one, grown to whole MiB when 10,000 parts are too few. */
export function partSizeFor(size: number, configured: number): number {
  if (size <= configured * MAX_PARTS) return configured;
  return Math.ceil(size / MAX_PARTS / MiB) * MiB;
}

const sameStat = (a: LocalFile, b: LocalFile) =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/** The file as the descriptor shows it now. */
export async function fstatFile(handle: FileHandle, file: LocalFile): Promise<LocalFile> {
  return toLocalFile(file.path, file.root, file.relativePath, await handle.stat({ bigint: true }));
}

/** Reads a small file so that the bytes match one fstat of it (a few tries if it is being written). */
async function readConsistently(
  handle: FileHandle,
  file: LocalFile,
): Promise<{ data: Buffer; file: LocalFile; stable: boolean }> {
  let before = file;
  for (let attempt = 0; ; attempt++) {
    const data = Buffer.alloc(before.size);
    let filled = 0;
    while (filled < data.length) {
      const { bytesRead } = await handle.read(data, filled, data.length - filled, filled);
      if (bytesRead === 0) break; // truncated meanwhile
      filled += bytesRead;
    }
    const after = await fstatFile(handle, file);
    const stable = sameStat(before, after) && filled === after.size;
    if (stable || attempt === 4) return { data: data.subarray(0, filled), file: after, stable };
    before = after;
  }
}

/** Sends `file` (as fstat-ed by the caller) from `handle` to `key`. */
export async function transferFile(
  key: string,
  file: LocalFile,
  handle: FileHandle,
  options: TransferOptions,
): Promise<Sent> {
  if (file.size <= options.partSize) return putSmall(key, file, handle, options);
  return uploadLarge(key, file, handle, options);
}

/**
 * Sends bytes already read (a small file, see readSmallFile) in one PutObject, with their MD5 as
 * Content-MD5 so the server checks what it stored. A stop waits for these few KiB rather than
 * aborting them.
 */
export async function putBuffer(
  key: string,
  data: Buffer,
  md5: Buffer,
  options: TransferOptions,
): Promise<void> {
  await options.limiter.take(data.length, undefined, options.priority);
  options.signal?.throwIfAborted();
  await options.putObject(options.bucket, key, data, md5);
  options.onBytes?.(data.length);
}

async function putSmall(
  key: string,
  file: LocalFile,
  handle: FileHandle,
  options: TransferOptions,
): Promise<TransferResult> {
  const read = await readConsistently(handle, file);
  await options.limiter.take(read.data.length, undefined, options.priority);
  options.signal?.throwIfAborted();
  const md5 = createHash("md5").update(read.data).digest();
  await options.putObject(options.bucket, key, read.data, md5, options.signal);
  options.onBytes?.(read.data.length);
  // A file that never held still while it was read is sent again on a later pass.
  const content = { md5: md5.toString("hex") };
  return { state: read.stable ? "sent" : "changed", file: read.file, content };
}

async function abortMultipart(options: TransferOptions, key: string, uploadId: string) {
  await options.client
    .send(new AbortMultipartUploadCommand({ Bucket: options.bucket, Key: key, UploadId: uploadId }))
    .catch(() => undefined); // gone already, or the next start's clean-up will see it
}

/**
 * A multipart upload without lib-storage: each of `queueSize` workers reads its next part straight
 * into one of its own part-size buffers (positional reads from the descriptor; no stream, no
 * concatenation, no garbage per part) and sends it with the lean UploadPart. Memory: queueSize
 * part buffers. The SDK creates, completes and aborts the upload. With `resume`, a part the
 * server holds is read and checked instead (its size, and its ETag against the part's MD5), and
 * sent only when it differs.
 */
async function uploadLarge(
  key: string,
  file: LocalFile,
  handle: FileHandle,
  options: TransferOptions,
): Promise<Sent> {
  const partSize = partSizeFor(file.size, options.partSize);
  const count = Math.ceil(file.size / partSize);
  const resume = options.resume?.partSize === partSize ? options.resume : undefined;
  const uploadId = resume?.uploadId ?? (await createMultipart(key, partSize, options));
  const etags: string[] = new Array(count);
  let next = 0;
  let reusedBytes = 0;
  const failed = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
  const sendParts = async (buffer: Buffer) => {
    while (next < count && !signal.aborted) {
      const part = next++;
      const start = part * partSize;
      const body = await readPart(handle, buffer, start, Math.min(partSize, file.size - start));
      const md5 = createHash("md5").update(body).digest();
      const held = resume?.parts.get(part + 1);
      if (held && held.size === body.length && held.etag === md5.toString("hex")) {
        etags[part] = `"${held.etag}"`;
        reusedBytes += body.length;
        continue;
      }
      await options.limiter.take(body.length, signal, options.priority);
      etags[part] = await options.uploadPart(
        options.bucket,
        key,
        uploadId,
        part + 1,
        body,
        md5,
        signal,
      );
      options.onBytes?.(body.length);
    }
  };
  const worker = async () => {
    const buffer = partBuffers.take(partSize);
    try {
      await sendParts(buffer);
    } catch (err) {
      failed.abort();
      throw err;
    } finally {
      partBuffers.give(buffer);
    }
  };
  let etag: string | undefined;
  try {
    const workers = Array.from({ length: Math.min(options.queueSize, count) }, worker);
    const results = await Promise.allSettled(workers);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw firstCause(results, failure.reason);
    options.signal?.throwIfAborted();
    etag = await completeMultipart(key, uploadId, etags, options);
  } catch (err) {
    if (!options.keepOnFailure) await abortMultipart(options, key, uploadId);
    throw err;
  }
  const after = await fstatFile(handle, file);
  // The server's multipart ETag stands for the content: no second pass over the bytes here.
  const content: Content = etag ? { etag: bareEtag(etag), partSize } : {};
  const changed = !sameStat(file, after);
  return {
    state: changed ? "changed" : "sent",
    file: changed ? after : file,
    content,
    reusedBytes,
  };
}

async function createMultipart(
  key: string,
  partSize: number,
  options: TransferOptions,
): Promise<string> {
  const { UploadId: uploadId } = await options.client.send(
    new CreateMultipartUploadCommand({ Bucket: options.bucket, Key: key }),
    { abortSignal: options.signal },
  );
  if (!uploadId) throw new Error("CreateMultipartUpload returned no upload id");
  options.onMultipartStart?.(key, uploadId, partSize);
  return uploadId;
}

async function completeMultipart(
  key: string,
  uploadId: string,
  etags: string[],
  options: TransferOptions,
): Promise<string | undefined> {
  const done = await options.client.send(
    new CompleteMultipartUploadCommand({
      Bucket: options.bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }),
  );
  if (done.ETag) checkMultipartEtag(done.ETag, etags);
  return done.ETag;
}

/**
 * The multipart ETag S3 computes is the MD5 of the parts' MD5s, then `-` and their count: when
 * the server's is of that form and every part's ETag is an MD5, they must agree.
 */
export function checkMultipartEtag(etag: string, partEtags: string[]): void {
  const bare = bareEtag(etag).toLowerCase();
  const digests = partEtags.map(e => bareEtag(e).toLowerCase());
  if (!/^[0-9a-f]{32}-\d+$/.test(bare) || !digests.every(d => /^[0-9a-f]{32}$/.test(d))) return;
  const whole = createHash("md5")
    .update(Buffer.concat(digests.map(d => Buffer.from(d, "hex"))))
    .digest("hex");
  if (bare !== `${whole}-${digests.length}`)
    throw new ChecksumMismatch("the server's multipart ETag is not that of the parts sent");
}

/**
 * Part buffers, reused from one upload to the next: a new 8 MiB buffer per worker per file was
 * most of the memory and garbage of many medium files. At most as many are kept as were in use
 * at once (multipart uploads x queue size).
 */
class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private inUse = 0;
  private peak = 0;

  take(size: number): Buffer {
    this.inUse++;
    this.peak = Math.max(this.peak, this.inUse);
    return this.free.get(size)?.pop() ?? Buffer.allocUnsafe(size);
  }

  give(buffer: Buffer): void {
    this.inUse--;
    const list = this.free.get(buffer.length) ?? [];
    if (list.length < this.peak) list.push(buffer);
    // Another part size (a file too large for 10,000 parts) replaces the kept ones.
    this.free.clear();
    this.free.set(buffer.length, list);
  }
}

const partBuffers = new BufferPool();

/** Fills `buffer` with `length` bytes from `position`; fewer if the file was truncated meanwhile. */
async function readPart(
  handle: FileHandle,
  buffer: Buffer,
  position: number,
  length: number,
): Promise<Buffer> {
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** The error that started it: not the aborts it caused in the other workers. */
function firstCause(results: PromiseSettledResult<void>[], fallback: unknown): unknown {
  // An aborted request of the lean path is an S3RequestError named by its code, ABORT_ERR.
  const aborted = (e: unknown) =>
    ["AbortError", "ABORT_ERR"].includes((e as Error)?.name) ||
    (e as NodeJS.ErrnoException)?.code === "ABORT_ERR";
  for (const r of results) if (r.status === "rejected" && !aborted(r.reason)) return r.reason;
  return fallback;
}

/**
 * Compressed uploads (a data path's `compression: gzip`). The scheme, chosen so that a reader of
 * the bucket can tell, and a device that lost its index sends nothing twice:
 * - the key is the file's key plus `.gz` (a file `a.csv` is `a.csv.gz`);
 * - the object is the gzip of the file (no name or time in its header), with Content-Type
 *   `application/gzip` and no Content-Encoding, so every client downloads the bytes as stored;
 * - user metadata `flotta-uncompressed-size` and `flotta-uncompressed-md5` (hex) say what the
 *   file was: adoption after a lost index compares those (a HEAD per object), not the gzip bytes,
 *   which another zlib may make differently.
 * The index keeps the file's MD5 and the object's size and ETag (the delivery record shows both
 * sizes; retention checks the object before it deletes the file).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { createGzip } from "node:zlib";
import type { StoredObject } from "./index-store";
import { bareEtag } from "./compare";
import { hashFile, readRange } from "./hash";
import { checkEtag } from "../s3/put-object";
import {
  checkMultipartEtag,
  fstatFile,
  type TransferOptions,
  type TransferResult,
} from "./transfer";
import type { LocalFile } from "./walk";

export const META_SIZE = "flotta-uncompressed-size";
export const META_MD5 = "flotta-uncompressed-md5";

const sameStat = (a: LocalFile, b: LocalFile) =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/**
 * Sends the gzip of `file` to `key`: one PutObject when it fits one part, else a multipart upload
 * of part-size pieces of the compressed stream (sent one after the other: the deflate is the
 * bottleneck). Every request carries Content-MD5. A cut-short upload is aborted, never resumed.
 */
export async function sendCompressed(
  key: string,
  file: LocalFile,
  handle: FileHandle,
  options: TransferOptions,
): Promise<TransferResult> {
  const { md5 } = await hashFile(handle, file.size, undefined, options.signal);
  const head = {
    ContentType: "application/gzip",
    Metadata: { [META_SIZE]: `${file.size}`, [META_MD5]: md5 },
  };
  const gzip = readRange(handle, file.size).pipe(createGzip({ level: 6 }));
  const upload = new PartWriter(key, options, head);
  let size = 0;
  try {
    for await (const chunk of gzip as AsyncIterable<Buffer>) {
      size += chunk.length;
      await upload.add(chunk);
    }
    const etag = await upload.finish();
    const after = await fstatFile(handle, file);
    const state = sameStat(file, after) ? "sent" : "changed";
    return {
      state,
      file: state === "sent" ? file : after,
      content: { md5, stored: { size, etag } },
    };
  } catch (err) {
    gzip.destroy();
    await upload.abort();
    throw err;
  }
}

/** Collects the compressed stream into parts and sends them. */
class PartWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private uploadId?: string;
  private readonly etags: string[] = [];

  constructor(
    private readonly key: string,
    private readonly options: TransferOptions,
    private readonly head: { ContentType: string; Metadata: Record<string, string> },
  ) {}

  async add(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.options.partSize) await this.sendPart();
  }

  private take(): Buffer {
    const all = Buffer.concat(this.pending);
    const part = all.subarray(0, this.options.partSize);
    const rest = all.subarray(part.length);
    this.pending = rest.length ? [Buffer.from(rest)] : [];
    this.pendingBytes = rest.length;
    return part;
  }

  private async sendPart(): Promise<void> {
    const { options } = this;
    if (!this.uploadId) {
      const created = await options.client.send(
        new CreateMultipartUploadCommand({ Bucket: options.bucket, Key: this.key, ...this.head }),
        { abortSignal: options.signal },
      );
      if (!created.UploadId) throw new Error("CreateMultipartUpload returned no upload id");
      // Not in the index's pending uploads: a compressed upload is never resumed, and one a
      // crash leaves open is found by the clean-up of unknown uploads after it.
      this.uploadId = created.UploadId;
    }
    const body = this.take();
    const md5 = createHash("md5").update(body).digest();
    await options.limiter.take(body.length, options.signal, options.priority);
    const part = this.etags.length + 1;
    this.etags.push(
      await options.uploadPart(
        options.bucket,
        this.key,
        this.uploadId,
        part,
        body,
        md5,
        options.signal,
      ),
    );
    options.onBytes?.(body.length);
  }

  /** Sends what is left; the object's ETag. */
  async finish(): Promise<string> {
    const { options } = this;
    if (!this.uploadId) {
      const body = this.take();
      const md5 = createHash("md5").update(body).digest();
      await options.limiter.take(body.length, options.signal, options.priority);
      const put = await options.client.send(
        new PutObjectCommand({
          Bucket: options.bucket,
          Key: this.key,
          Body: body,
          ContentMD5: md5.toString("base64"),
          ...this.head,
        }),
        { abortSignal: options.signal },
      );
      checkEtag(put.ETag ?? "", md5, this.key);
      options.onBytes?.(body.length);
      return bareEtag(put.ETag ?? md5.toString("hex"));
    }
    if (this.pendingBytes) await this.sendPart();
    const done = await options.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: options.bucket,
        Key: this.key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: this.etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    if (done.ETag) checkMultipartEtag(done.ETag, this.etags);
    this.uploadId = undefined;
    return bareEtag(done.ETag ?? "");
  }

  async abort(): Promise<void> {
    if (!this.uploadId) return;
    await this.options.client
      .send(
        new AbortMultipartUploadCommand({
          Bucket: this.options.bucket,
          Key: this.key,
          UploadId: this.uploadId,
        }),
      )
      .catch(() => undefined);
  }
}

/**
 * True when the object at `key` says it is the gzip of a file with this size and MD5 (adoption
 * after a lost index); its size and ETag then.
 */
export async function compressedObjectOf(
  client: S3Client,
  bucket: string,
  key: string,
  file: { size: number; md5: string },
  signal?: AbortSignal,
): Promise<StoredObject | undefined> {
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), {
    abortSignal: signal,
  });
  const meta = head.Metadata ?? {};
  if (meta[META_SIZE] !== `${file.size}` || meta[META_MD5] !== file.md5) return undefined;
  return { size: head.ContentLength ?? 0, etag: bareEtag(head.ETag ?? "") };
}

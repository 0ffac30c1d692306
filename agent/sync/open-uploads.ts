/**
 * The multipart uploads a destination has open: each one's id and file are kept in the index
 * (`pendingUploads`) from the moment it is created, so that after a crash, a reboot or a lost
 * link it is either resumed (the device config's resumeUploads, while younger than
 * abortUploadsAfterHours, for the same file) or aborted, and no orphaned parts pile up in the
 * bucket. Uploads the index does not know (a crash before their id was saved, a wiped index) are
 * found by listing the open uploads under a prefix, and aborted.
 */
import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { bareEtag } from "./compare";
import { describeError, type Logger } from "./errors";
import type { DestinationIndex, PendingUpload } from "./index-store";
import type { ResumableUpload } from "./transfer";
import type { LocalFile } from "./walk";

/** What the device config says about multipart uploads cut short. */
export interface UploadPolicy {
  resume: boolean;
  /** Older open uploads are aborted, not resumed. */
  abortAfterMs: number;
}

export class OpenUploads {
  policy: UploadPolicy = { resume: false, abortAfterMs: 24 * 3_600_000 };
  /** Keys being sent right now by this process: their uploads are never aborted from here. */
  readonly inFlight = new Set<string>();
  /** Prefixes whose open uploads this process has looked through. */
  private readonly checked = new Set<string>();

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    /** The loaded index, and a note that it changed. */
    private readonly index: () => DestinationIndex,
    private readonly changed: () => void,
    private readonly log: Logger,
  ) {}

  private get pending(): Record<string, PendingUpload> {
    return this.index().pendingUploads;
  }

  /** True for an upload the policy resumes: resumes are on, it is young enough, its file known. */
  private resumable(pending: PendingUpload): boolean {
    const age = Date.now() - Date.parse(pending.startedAt);
    return this.policy.resume && pending.size !== undefined && age < this.policy.abortAfterMs;
  }

  /** Aborts every known upload the policy does not resume (at start, and after full scans). */
  async abortUnresumable(): Promise<void> {
    for (const [key, pending] of Object.entries(this.pending)) {
      if (this.inFlight.has(key) || this.resumable(pending)) continue;
      if (await this.abort(key, pending.uploadId)) this.forget(key);
    }
  }

  /** With resumes on, uploads stay open on purpose: unknown ones are looked for once per prefix. */
  async abortStraysOnce(prefix: string): Promise<void> {
    if (this.policy.resume && !this.checked.has(prefix)) await this.abortStrays(prefix);
  }

  /**
   * Aborts the open uploads under `prefix` that this process is not sending and the index does
   * not keep to resume: what a crash between CreateMultipartUpload and the save of its id left.
   */
  async abortStrays(prefix: string): Promise<void> {
    // Never the whole bucket: other devices' and paths' uploads live there (targets are never
    // empty, see targetProblem; this is the last line).
    if (!prefix) return;
    for await (const upload of this.openUnder(prefix)) {
      if (!upload.Key?.startsWith(prefix) || !upload.UploadId || this.inFlight.has(upload.Key))
        continue;
      if (this.pending[upload.Key]?.uploadId === upload.UploadId) continue;
      await this.abort(upload.Key, upload.UploadId);
    }
    this.checked.add(prefix);
  }

  /**
   * Every open upload under `prefix`, page after page to the end. The next page starts after
   * both markers, as S3 documents; a server that refuses the upload-id marker (versitygw says
   * "Invalid uploadId marker") is paged by key alone, which can only miss a second upload of
   * the key at a page's end (found at a later start).
   */
  private async *openUnder(prefix: string) {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    let byKeyOnly = false;
    do {
      const list = (withId: boolean) =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: withId ? uploadIdMarker : undefined,
          }),
        );
      let page;
      try {
        page = await list(!byKeyOnly);
      } catch (err) {
        if (!uploadIdMarker || byKeyOnly || (err as Error).name !== "InvalidArgument") throw err;
        byKeyOnly = true;
        page = await list(false);
      }
      yield* page.Uploads ?? [];
      const more = page.IsTruncated && !!page.NextKeyMarker;
      keyMarker = more ? page.NextKeyMarker : undefined;
      uploadIdMarker = more ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  /** True when the upload is aborted (or was gone already). */
  private async abort(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      );
      this.log.info("aborted a multipart upload left by an earlier run", { key });
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchUpload") return true;
      this.log.warn("could not abort a leftover multipart upload; will try again", {
        key,
        error: describeError(err),
      });
      return false;
    }
  }

  /**
   * The upload an earlier run left open for this file, with the parts the server holds; undefined
   * (after aborting it) when the file changed since, or was sent in other parts (`partSize`, what
   * this run would use, changed with --part-size), or when there is none to resume.
   */
  async resumeFor(
    key: string,
    file: LocalFile,
    partSize: number,
  ): Promise<ResumableUpload | undefined> {
    const pending = this.pending[key];
    if (!pending || !this.policy.resume) return undefined;
    const same =
      pending.size === file.size && pending.mtimeNs === file.mtimeNs && pending.ino === file.ino;
    if (!same || !this.resumable(pending) || pending.partSize !== partSize) {
      if (await this.abort(key, pending.uploadId)) this.forget(key);
      return undefined;
    }
    try {
      const parts = await this.listParts(key, pending.uploadId);
      this.log.info("resuming a multipart upload", { key, partsOnServer: parts.size });
      return { uploadId: pending.uploadId, partSize, parts };
    } catch (err) {
      if ((err as { name?: string }).name !== "NoSuchUpload") throw err;
      this.forget(key); // completed or aborted by someone else: start over
      return undefined;
    }
  }

  private async listParts(key: string, uploadId: string): Promise<ResumableUpload["parts"]> {
    const parts: ResumableUpload["parts"] = new Map();
    let marker: string | undefined;
    do {
      const page = await this.client.send(
        new ListPartsCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumberMarker: marker,
        }),
      );
      for (const part of page.Parts ?? [])
        if (part.PartNumber && part.ETag)
          parts.set(part.PartNumber, { size: part.Size ?? -1, etag: bareEtag(part.ETag) });
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker);
    return parts;
  }

  /** An upload was created for `file` (its stamps decide whether a later run may resume it). */
  started(key: string, uploadId: string, partSize: number, file?: LocalFile): void {
    const { size, mtimeNs, ino } = file ?? {};
    const startedAt = new Date().toISOString();
    this.pending[key] = { uploadId, startedAt, size, mtimeNs, ino, partSize };
    this.changed();
  }

  /** The upload of `key` is over (completed, or known to be gone). */
  forget(key: string): void {
    if (!this.pending[key]) return;
    delete this.pending[key];
    this.changed();
  }
}

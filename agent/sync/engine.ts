/**
 * One sync pass to one destination, in the steps rclone's sync uses: list (only what the
 * index has not seen), walk, compare, transfer. The index is saved when the pass ends, and
 * whenever a multipart upload starts (so that a crash can be cleaned up).
 */
import {
  AbortMultipartUploadCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { join } from "node:path";
import type { WorkloadPaths } from "../config/device-config";
import {
  bareEtag,
  decide,
  guessPartSize,
  multipartPartCount,
  sameContent,
  type Content,
  type RemoteObject,
} from "./compare";
import { hashFile } from "./hash";
import type { DestinationIndex, IndexEntry, IndexStore } from "./index-store";
import { objectKey, targetPrefix } from "./keys";
import type { RateLimiter } from "./rate-limit";
import { Semaphore } from "./semaphore";
import { transferFile } from "./transfer";
import { walk, type LocalFile } from "./walk";

export interface SyncSettings {
  volumesDir: string;
  /** Files sent at once. */
  concurrency: number;
  /** Of those, multipart uploads at once: each holds (queueSize + 1) x partSize of memory. */
  multipartConcurrency: number;
  partSize: number;
  queueSize: number;
  limiter: RateLimiter;
  /** Called as bytes go out (for a progress line). */
  onBytes?: (bytes: number) => void;
}

export interface WorkloadReport {
  filesSent: number;
  bytesSent: number;
  errors: number;
  lastError?: string;
}

export interface PassReport {
  filesSeen: number;
  filesSent: number;
  bytesSent: number;
  adopted: number;
  /** Same bytes, new times: not sent. */
  refreshed: number;
  /** Changed while being sent: sent again on a later pass. */
  changedDuringUpload: number;
  listedPrefixes: string[];
  failures: { key: string; error: string }[];
  walkProblems: { path: string; error: string }[];
  workloads: Record<string, WorkloadReport>;
  /** Set when the pass stopped early because the destination itself fails. */
  aborted?: string;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** The short, credential-free description of an S3 or file error. */
export function describeError(err: unknown): string {
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name && e.name !== "Error" ? e.name : e?.code;
  const text = [name, e?.message].filter(Boolean).join(": ") || String(err);
  return status ? `${text} (HTTP ${status})` : text;
}

/** Errors that say the destination as a whole is unusable, not one file. */
function isDestinationError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const names = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "NoSuchBucket",
    "Forbidden",
  ];
  const codes = [
    "ECONNREFUSED",
    "ENOTFOUND",
    "EHOSTUNREACH",
    "ECONNRESET",
    "ETIMEDOUT",
    "EAI_AGAIN",
  ];
  return (
    names.includes(e?.name ?? "") ||
    codes.includes(e?.code ?? "") ||
    /certificate|self.signed|CERT_/i.test(String((err as Error)?.message ?? "")) ||
    e?.$metadata?.httpStatusCode === 403
  );
}

export class DestinationSync {
  private saving: Promise<void> = Promise.resolve();
  /** Files or pending uploads changed: save at the next chance. */
  private dirty = false;
  /** Only sync times changed: worth a save at most once a minute (an idle pass writes nothing). */
  private timesDirty = false;
  private lastSave = 0;
  private index!: DestinationIndex;

  constructor(
    private readonly client: S3Client,
    private readonly destination: { endpoint: string; bucket: string },
    private readonly store: IndexStore,
    private readonly settings: SyncSettings,
    private readonly log: Logger,
  ) {}

  /** Loads the index and aborts the multipart uploads a crash left behind. */
  async open(): Promise<void> {
    const loaded = await this.store.load(this.destination);
    this.index = loaded.index;
    if (loaded.state === "corrupt") {
      this.log.warn("index was unreadable; set aside, the bucket will be listed again", {
        setAsideAs: loaded.setAsideAs,
      });
    }
    for (const [key, uploadId] of Object.entries(this.index.pendingUploads)) {
      try {
        await this.client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.destination.bucket,
            Key: key,
            UploadId: uploadId,
          }),
        );
        this.log.info("aborted a multipart upload left by an earlier run", { key });
      } catch (err) {
        if ((err as { name?: string }).name !== "NoSuchUpload") {
          this.log.warn("could not abort a leftover multipart upload; will try again", {
            key,
            error: describeError(err),
          });
          continue;
        }
      }
      delete this.index.pendingUploads[key];
      this.dirty = true;
    }
    await this.persist();
  }

  get state(): DestinationIndex {
    return this.index;
  }

  /** Saves the index if it changed; saves never overlap. */
  persist(): Promise<void> {
    // Chained on the previous save whatever its outcome: one failed save must not stop the rest.
    this.saving = this.saving
      .catch(() => undefined)
      .then(async () => {
        const timesDue = this.timesDirty && Date.now() - this.lastSave > 60_000;
        if (!this.dirty && !timesDue) return;
        this.dirty = false;
        this.timesDirty = false;
        this.lastSave = Date.now();
        try {
          await this.store.save(this.index);
        } catch (err) {
          this.dirty = true;
          throw err;
        }
      });
    return this.saving;
  }

  /** persist() from a callback that cannot wait: a failure is logged, and retried next save. */
  private persistInBackground(): void {
    this.persist().catch(err => {
      this.log.warn("could not save the index; will try again", { error: describeError(err) });
    });
  }

  private async listPrefix(prefix: string): Promise<Map<string, RemoteObject>> {
    const objects = new Map<string, RemoteObject>();
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.destination.bucket,
          Prefix: prefix,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key)
          objects.set(object.Key, { size: object.Size ?? 0, etag: bareEtag(object.ETag ?? "") });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  /** True when the local file has the content of the remote object. */
  private async matchesRemote(
    file: LocalFile,
    remote: RemoteObject,
  ): Promise<{ md5: string } | undefined> {
    const parts = multipartPartCount(remote.etag);
    if (parts === 0) {
      const { md5 } = await hashFile(file.absolutePath);
      return md5 === remote.etag ? { md5 } : undefined;
    }
    const ours =
      Math.ceil(file.size / this.settings.partSize) === parts ? this.settings.partSize : undefined;
    const partSize = ours ?? guessPartSize(file.size, parts);
    if (!partSize) return undefined;
    const hashes = await hashFile(file.absolutePath, partSize);
    return hashes.multipartEtag === remote.etag ? { md5: hashes.md5 } : undefined;
  }

  async pass(workloads: WorkloadPaths[]): Promise<PassReport> {
    const report: PassReport = {
      filesSeen: 0,
      filesSent: 0,
      bytesSent: 0,
      adopted: 0,
      refreshed: 0,
      changedDuringUpload: 0,
      listedPrefixes: [],
      failures: [],
      walkProblems: [],
      workloads: {},
    };
    const files = new Semaphore(this.settings.concurrency);
    const multipart = new Semaphore(this.settings.multipartConcurrency);
    let consecutiveDestinationErrors = 0;
    const tasks: Promise<void>[] = [];
    const index = this.index;

    for (const workload of workloads) {
      const wr: WorkloadReport = (report.workloads[workload.name] = {
        filesSent: 0,
        bytesSent: 0,
        errors: 0,
      });
      for (const path of workload.paths) {
        const prefix = targetPrefix(path.target);
        let remote: Map<string, RemoteObject> | undefined;
        if (!index.listedPrefixes.includes(prefix)) {
          // First time this destination sees this prefix: adopt what is already there.
          remote = await this.listPrefix(prefix);
          report.listedPrefixes.push(prefix);
        }
        const walked = await walk(join(this.settings.volumesDir, workload.name, path.source));
        report.walkProblems.push(...walked.problems);
        report.filesSeen += walked.files.length;

        for (const file of walked.files) {
          const key = objectKey(path.target, file.relativePath);
          const decision = decide(file, index.files[key], remote?.get(key));
          if (decision.action === "skip") continue;
          const record = (content: Content, stat: LocalFile, sent: boolean) => {
            const entry: IndexEntry = {
              workload: workload.name,
              size: stat.size,
              mtimeNs: stat.mtimeNs,
              ctimeNs: stat.ctimeNs,
              ino: stat.ino,
              ...content,
              sentAt: sent
                ? new Date().toISOString()
                : (index.files[key]?.sentAt ?? new Date().toISOString()),
            };
            index.files[key] = entry;
            this.dirty = true;
            // A long pass saves as it goes: a crash re-sends at most the last seconds' files.
            if (Date.now() - this.lastSave > 10_000) this.persistInBackground();
          };
          tasks.push(
            files.run(async () => {
              if (report.aborted) return;
              try {
                if (decision.action === "verify-local") {
                  const hashes = await hashFile(file.absolutePath, decision.entry.partSize);
                  if (sameContent(decision.entry, hashes)) {
                    record({ md5: hashes.md5 }, file, false);
                    report.refreshed++;
                    return;
                  }
                } else if (decision.action === "verify-remote") {
                  const match = await this.matchesRemote(file, decision.remote);
                  if (match) {
                    record(match, file, false);
                    report.adopted++;
                    return;
                  }
                }
                const send = () =>
                  transferFile(key, file, {
                    client: this.client,
                    bucket: this.destination.bucket,
                    partSize: this.settings.partSize,
                    queueSize: this.settings.queueSize,
                    limiter: this.settings.limiter,
                    onBytes: this.settings.onBytes,
                    onMultipartStart: (k, uploadId) => {
                      index.pendingUploads[k] = uploadId;
                      this.dirty = true;
                      this.persistInBackground();
                    },
                  });
                const result =
                  file.size > this.settings.partSize ? await multipart.run(send) : await send();
                if (index.pendingUploads[key]) {
                  delete index.pendingUploads[key];
                  this.dirty = true;
                }
                consecutiveDestinationErrors = 0;
                if (result.state === "vanished") return;
                report.bytesSent += result.file.size;
                wr.bytesSent += result.file.size;
                if (result.state === "changed") {
                  report.changedDuringUpload++;
                  return;
                }
                record(result.content, result.file, true);
                report.filesSent++;
                wr.filesSent++;
              } catch (err) {
                const error = describeError(err);
                report.failures.push({ key, error });
                wr.errors++;
                wr.lastError = error;
                if (isDestinationError(err) && ++consecutiveDestinationErrors >= 3) {
                  report.aborted ??= error;
                }
              }
            }),
          );
        }
      }
    }
    await Promise.all(tasks);
    if (!report.aborted) {
      for (const prefix of report.listedPrefixes)
        if (!index.listedPrefixes.includes(prefix)) index.listedPrefixes.push(prefix);
      if (report.listedPrefixes.length) this.dirty = true;
    }
    const now = new Date().toISOString();
    for (const [name, wr] of Object.entries(report.workloads)) {
      const state = (index.workloads[name] ??= {});
      if (wr.errors === 0 && !report.aborted) state.lastSyncTime = now;
      if (wr.filesSent > 0) state.lastUploadTime = now;
      state.lastError = wr.lastError ?? (report.aborted ? report.aborted : undefined);
      this.timesDirty = true;
    }
    await this.persist();
    return report;
  }
}

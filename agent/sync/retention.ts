/**
 * Local retention (a data path's `retention`): files whose objects are confirmed in the bucket
 * are deleted from the device, after a delay, or oldest first to keep the source folder under a
 * size cap. What makes a deletion safe, in order:
 * 1. the file is confirmed: the index holds it with the very stamps it has now (size, mtime,
 *    ctime, inode), and the index records only what the server acknowledged with a matching
 *    Content-MD5/ETag (or what a listing showed with the file's hash);
 * 2. the object is still there as recorded: a HEAD gives its size and ETag (so with the server
 *    unreachable, nothing is deleted);
 * 3. just before the unlink, the entry is looked at again through a descriptor of its folder
 *    (opened without following links and checked to be inside the source), by
 *    `/proc/self/fd/<dir>/<name>`: it must still be a regular file with the same stamps. The
 *    unlink goes through the same descriptor path, so a folder swapped for a link meanwhile
 *    cannot send it elsewhere; a file reached through a link is never deleted.
 * Remote objects are never deleted. A file being written while it is deleted (within the
 * microseconds between the last look and the unlink) loses that write: a path with retention
 * should set quietSeconds, or write files under a temporary name and rename them.
 */
import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { lstat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { DataPath, WorkloadPaths } from "../config/device-config";
import { bareEtag } from "./compare";
import type { Deletion } from "./deletion-log";
import { describeError, isDestinationError } from "./errors";
import { pathFilter } from "./filter";
import { normalizeTarget, pathKeys } from "./keys";
import { openDirectory, descriptorPath, childPath } from "./confined";
import type { FileIndex, IndexEntry } from "./index-store";
import { keyToName, toLocalFile, walkFiles, type LocalFile } from "./walk";

export interface RetentionTarget {
  workload: string;
  /** The data path's source as configured, for messages. */
  source: string;
  /** `<workload>/<source>` below the volumes dir. */
  sourcePath: string;
  /** Keys of this path: prefix + relative path + suffix. */
  prefix: string;
  suffix: string;
  retention: NonNullable<DataPath["retention"]>;
  wanted(relativePath: string): boolean;
}

export interface RetentionContext {
  volumesDir: string;
  index: FileIndex;
  /** True when the object of `key` is in the bucket as `entry` recorded it (throws when it cannot tell). */
  confirm(key: string, entry: IndexEntry): Promise<boolean>;
  /** Called after each deletion. */
  deleted(key: string, target: RetentionTarget, file: LocalFile): void;
  now: number;
  /** "measure": only the sizes (the destination is not reachable): nothing is deleted. */
  mode: "delete" | "measure";
}

export interface PathRetention {
  target: RetentionTarget;
  /** Bytes of regular files in the source folder after the sweep. */
  bytes: number;
  deleted: number;
  deletedBytes: number;
  /** When the next delayed deletion falls due (ms). */
  nextDue?: number;
  /** Set when the folder is over its cap and nothing more may be deleted. */
  pressure?: string;
}

interface Held {
  file: LocalFile;
  key: string;
  entry: IndexEntry;
}

/** Sizes and confirmed files of one source folder (files reached through a link are not counted). */
async function survey(target: RetentionTarget, ctx: RetentionContext) {
  const confirmed: Held[] = [];
  let bytes = 0;
  const notes = { problems: [], skipped: [] };
  for await (const batch of walkFiles(ctx.volumesDir, target.sourcePath, notes)) {
    for (const file of batch) {
      if (!file.path.equals(childPath(file.root, keyToName(file.relativePath)))) continue;
      bytes += file.size;
      if (!target.wanted(file.relativePath)) continue;
      const key = target.prefix + file.relativePath + target.suffix;
      if (!ctx.index.hasStat(key, file)) continue;
      confirmed.push({ file, key, entry: ctx.index.get(key)! });
    }
  }
  return { bytes, confirmed };
}

/** What retention did after a pass. */
export interface RetentionReport {
  paths: PathRetention[];
  deletions: Deletion[];
  /** Why it stopped deleting (the bucket could not confirm, a path failed), if it did. */
  problem?: string;
}

/**
 * Retention in every data path that has it. A destination error (the bucket cannot confirm)
 * turns the rest into "measure": nothing more is deleted, the sizes still count.
 */
export async function retainPaths(
  workloads: WorkloadPaths[],
  keyPrefix: string | undefined,
  ctx: RetentionContext,
): Promise<RetentionReport> {
  const report: RetentionReport = { paths: [], deletions: [] };
  const context: RetentionContext = {
    ...ctx,
    deleted: (key, target, file) => {
      ctx.deleted(key, target, file);
      report.deletions.push({
        at: new Date().toISOString(),
        key,
        workload: target.workload,
        path: file.relativePath,
        size: file.size,
      });
    },
  };
  for (const workload of workloads)
    for (const path of workload.paths) {
      if (!path.retention) continue;
      const source = normalizeTarget(path.source);
      const target = {
        workload: workload.name,
        source: source || ".",
        sourcePath: source ? join(workload.name, source) : workload.name,
        ...pathKeys(keyPrefix, path),
        retention: path.retention,
        wanted: pathFilter(path).wanted,
      };
      try {
        report.paths.push(await sweep(target, context));
      } catch (err) {
        if (!isDestinationError(err)) {
          report.problem = `data path ${target.source}: ${describeError(err)}`;
          continue;
        }
        report.problem = describeError(err);
        context.mode = "measure";
        report.paths.push(await sweep(target, context));
      }
    }
  return report;
}

/** True when the object of `key` is in the bucket with the size and ETag the index recorded. */
export async function objectAsRecorded(
  client: S3Client,
  bucket: string,
  key: string,
  entry: IndexEntry,
): Promise<boolean> {
  let head;
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw err;
  }
  const size = entry.stored?.size ?? entry.size;
  const expected = entry.stored?.etag ?? entry.etag ?? entry.md5;
  return head.ContentLength === size && !!expected && bareEtag(head.ETag ?? "") === expected;
}

/** Deletes what retention allows in one data path; in "measure" mode only counts. */
export async function sweep(
  target: RetentionTarget,
  ctx: RetentionContext,
): Promise<PathRetention> {
  const { bytes, confirmed } = await survey(target, ctx);
  const result: PathRetention = { target, bytes, deleted: 0, deletedBytes: 0 };
  const { deleteAfterUpload, deleteAfterSeconds = 0, maxBytes } = target.retention;
  const remove = async (held: Held) => {
    if (ctx.mode !== "delete") return false;
    if (!(await ctx.confirm(held.key, held.entry))) return false;
    if (!(await unlinkIfUnchanged(held.file))) return false;
    ctx.index.delete(held.key);
    ctx.deleted(held.key, target, held.file);
    result.deleted++;
    result.deletedBytes += held.file.size;
    result.bytes -= held.file.size;
    return true;
  };
  const kept: Held[] = [];
  for (const held of confirmed) {
    const due = Date.parse(held.entry.sentAt) + deleteAfterSeconds * 1000;
    if (deleteAfterUpload && due <= ctx.now && (await remove(held))) continue;
    if (deleteAfterUpload && due > ctx.now) result.nextDue = Math.min(result.nextDue ?? due, due);
    kept.push(held);
  }
  if (maxBytes === undefined || result.bytes <= maxBytes) return result;
  kept.sort(
    (a, b) =>
      a.file.mtimeNs.length - b.file.mtimeNs.length || (a.file.mtimeNs < b.file.mtimeNs ? -1 : 1),
  );
  for (const held of kept) {
    if (result.bytes <= maxBytes) break;
    await remove(held);
  }
  if (result.bytes > maxBytes) result.pressure = pressureMessage(result, maxBytes, ctx.mode);
  return result;
}

function pressureMessage(
  r: PathRetention,
  maxBytes: number,
  mode: RetentionContext["mode"],
): string {
  const why =
    mode === "measure"
      ? "the bucket cannot be reached, so nothing is deleted"
      : "the rest is not confirmed in the bucket yet";
  return `workload ${r.target.workload}, data path ${r.target.source}: ${r.bytes} bytes, over its cap of ${maxBytes}: ${why}`;
}

/**
 * Unlinks the file when its folder is still inside the source and the entry there is still the
 * regular file the index confirmed (same stamps). False when anything differs.
 */
export async function unlinkIfUnchanged(file: LocalFile): Promise<boolean> {
  const slash = file.path.lastIndexOf(0x2f);
  const dir = file.path.subarray(0, slash);
  const name = file.path.subarray(slash + 1);
  const opened = await openDirectory(dir, file.root);
  if (opened.state !== "open") return false;
  const { handle } = opened.value;
  try {
    const inside = childPath(descriptorPath(handle.fd), name);
    let now: LocalFile;
    try {
      const stat = await lstat(inside, { bigint: true });
      if (!stat.isFile()) return false;
      now = toLocalFile(file.path, file.root, file.relativePath, stat);
    } catch {
      return false; // gone meanwhile
    }
    if (
      now.size !== file.size ||
      now.mtimeNs !== file.mtimeNs ||
      now.ctimeNs !== file.ctimeNs ||
      now.ino !== file.ino
    )
      return false;
    await unlink(inside);
    return true;
  } finally {
    await handle.close();
  }
}

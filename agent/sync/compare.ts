/**
 * Decides, per local file, what the transfer step must do. Pure: no I/O.
 *
 * - no index entry: send it (or, when the destination's index was just rebuilt from a bucket
 *   listing and the object there has the same size, check its content against the object);
 * - size differs: send it;
 * - size, mtime, ctime and inode all equal: nothing;
 * - same size but other times (touched, or rewritten): hash it; send only if the bytes differ
 *   from what the entry recorded (an MD5, or a multipart ETag with its part size).
 */
import type { FileHashes } from "./hash";
import type { IndexEntry } from "./index-store";
import type { LocalFile } from "./walk";

export interface RemoteObject {
  size: number;
  etag: string;
}

export type Decision =
  | { action: "skip" }
  | { action: "upload" }
  /** Hash the file; the content the entry recorded means unchanged (refresh the entry), else send. */
  | { action: "verify-local"; entry: IndexEntry }
  /** Hash the file as S3 would; equal to the object's ETag means adopt it, else send. */
  | { action: "verify-remote"; remote: RemoteObject };

export function decide(
  file: LocalFile,
  entry: IndexEntry | undefined,
  remote?: RemoteObject,
  compressed = false,
): Decision {
  if (!entry) {
    // A compressed object's size is not the file's: its metadata tells (compression.ts).
    if (remote && (compressed || remote.size === file.size))
      return { action: "verify-remote", remote };
    return { action: "upload" };
  }
  if (entry.size !== file.size) return { action: "upload" };
  if (entry.mtimeNs === file.mtimeNs && entry.ctimeNs === file.ctimeNs && entry.ino === file.ino) {
    return { action: "skip" };
  }
  return { action: "verify-local", entry };
}

/** The fingerprint an index entry keeps of a file's content. */
export type Content = Pick<IndexEntry, "md5" | "etag" | "partSize" | "stored">;

/** True when the hashes of a local file show the content an entry recorded. */
export function sameContent(recorded: Content, hashes: FileHashes): boolean {
  if (recorded.md5) return hashes.md5 === recorded.md5;
  if (recorded.etag) return hashes.multipartEtag === recorded.etag;
  return false;
}

/** S3's ETag without quotes. */
export function bareEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/"/g, "");
}

/** The number of parts in a multipart ETag (`<md5 of part md5s>-N`), or 0 for a plain MD5. */
export function multipartPartCount(etag: string): number {
  const match = /-(\d+)$/.exec(bareEtag(etag));
  return match ? Number(match[1]) : 0;
}

/**
 * The part size that a multipart upload of `size` bytes in `parts` parts used, if it was a
 * whole number of MiB (what lib-storage, aws-cli and rclone use); undefined otherwise.
 */
export function guessPartSize(size: number, parts: number): number | undefined {
  const MiB = 1024 * 1024;
  for (let mib = 5; mib <= 5 * 1024; mib++) {
    const partSize = mib * MiB;
    if (Math.ceil(size / partSize) === parts) return partSize;
    if (Math.ceil(size / partSize) < parts) return undefined;
  }
  return undefined;
}

/**
 * The agent's memory of what it sent: one index file per destination (endpoint + bucket).
 * With it an idle cycle needs no S3 request and a restart sends nothing twice.
 *
 * Writes are atomic (temp file, fsync, rename, fsync of the directory) and mode 0600, so a
 * crash leaves either the old index or the new one. A file that does not parse (torn by a
 * foreign writer, or from an unknown version) is set aside as `<name>.corrupt` and the agent
 * starts that destination afresh: it lists the bucket and adopts what already matches.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rename } from "node:fs/promises";
import { writeFileAtomic } from "../atomic-file";
import { join } from "node:path";

export const INDEX_VERSION = 1;

export interface IndexEntry {
  /** Workload that owns the file, for per-workload status. */
  workload: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  /**
   * What the content was, to tell a touched file from a changed one: the whole-file MD5 (hex)
   * when known (sent in one request, adopted, or verified), else S3's multipart ETag and the part
   * size it was made with (sent in parts: hashing it while sending would cost a sixth of the time).
   */
  md5?: string;
  etag?: string;
  partSize?: number;
  /** ISO time of the upload (or adoption). */
  sentAt: string;
}

export interface WorkloadSyncState {
  lastSyncTime?: string;
  lastUploadTime?: string;
  lastError?: string;
}

export interface DestinationIndex {
  version: typeof INDEX_VERSION;
  endpoint: string;
  bucket: string;
  /** By object key. */
  files: Record<string, IndexEntry>;
  /** Multipart uploads in flight, by object key: aborted on the next start after a crash. */
  pendingUploads: Record<string, string>;
  /** Key prefixes already listed in the bucket: listed once, to adopt objects already there. */
  listedPrefixes: string[];
  workloads: Record<string, WorkloadSyncState>;
}

export interface Destination {
  endpoint: string;
  bucket: string;
}

export function emptyIndex(destination: Destination): DestinationIndex {
  return {
    version: INDEX_VERSION,
    ...destination,
    files: {},
    pendingUploads: {},
    listedPrefixes: [],
    workloads: {},
  };
}

export function indexFileName(destination: Destination): string {
  const id = createHash("sha256")
    .update(`${destination.endpoint}\n${destination.bucket}`)
    .digest("hex");
  return `index-${id.slice(0, 20)}.json`;
}

/** Checks the shape of a parsed index; anything else is treated as torn. */
function isIndex(value: unknown, destination: Destination): value is DestinationIndex {
  const v = value as DestinationIndex;
  return (
    typeof v === "object" &&
    v !== null &&
    v.version === INDEX_VERSION &&
    v.endpoint === destination.endpoint &&
    v.bucket === destination.bucket &&
    typeof v.files === "object" &&
    typeof v.pendingUploads === "object" &&
    Array.isArray(v.listedPrefixes) &&
    typeof v.workloads === "object"
  );
}

export type LoadedIndex =
  | { state: "found"; index: DestinationIndex }
  | { state: "missing"; index: DestinationIndex }
  | { state: "corrupt"; index: DestinationIndex; setAsideAs: string };

export class IndexStore {
  constructor(private readonly stateDir: string) {}

  pathOf(destination: Destination): string {
    return join(this.stateDir, indexFileName(destination));
  }

  async load(destination: Destination): Promise<LoadedIndex> {
    const path = this.pathOf(destination);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        return { state: "missing", index: emptyIndex(destination) };
      }
      throw err;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (isIndex(parsed, destination)) return { state: "found", index: parsed };
    } catch {
      // fall through: torn or foreign content
    }
    const setAsideAs = `${path}.corrupt`;
    await rename(path, setAsideAs);
    return { state: "corrupt", index: emptyIndex(destination), setAsideAs };
  }

  async save(index: DestinationIndex): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.pathOf(index), JSON.stringify(index));
  }

  /** Every index in the state directory (for `status`). */
  async all(): Promise<DestinationIndex[]> {
    let names: string[];
    try {
      names = await readdir(this.stateDir);
    } catch {
      return [];
    }
    const indexes: DestinationIndex[] = [];
    for (const name of names.filter(n => /^index-[0-9a-f]+\.json$/.test(n))) {
      try {
        const parsed = JSON.parse(
          await readFile(join(this.stateDir, name), "utf8"),
        ) as DestinationIndex;
        if (parsed.version === INDEX_VERSION) indexes.push(parsed);
      } catch {
        // a torn index is reported by load(), not here
      }
    }
    return indexes;
  }
}

/**
 * The agent's memory of what it sent, one per destination (endpoint + bucket). With it an idle
 * pass needs no S3 request and a restart sends nothing twice.
 *
 * On disk it is a snapshot and a journal, so that a pass which changes k files writes O(k) bytes
 * (flash wears out; a whole index rewritten per pass was 20 MB at 100,000 files):
 * - `index-<id>.snap`: a header line, then one line per file. Written whole (temp file, fsync,
 *   rename, fsync of the directory) only when compacting: when the journal has grown past the
 *   snapshot (so each change is written about twice over its life) or on the first save.
 * - `index-<id>.<generation>.log`: the changes since that snapshot, appended and fsync-ed at each
 *   save. A compaction starts the next generation; journals of other generations are stale.
 * Every line carries the CRC-32 of its record. Loading stops at the first line that is torn
 * (no newline, or a CRC that does not match, as a crash or power cut can leave at the end) and
 * cuts the journal there: what came before stands, and a file whose record was lost is checked
 * again on the next pass. A snapshot that does not parse, or belongs to another destination, is
 * set aside as `.corrupt` and the destination starts afresh: it lists the bucket again and adopts
 * what already matches. All files are mode 0600. A version 1 index (`index-<id>.json`) is read
 * once and replaced by a snapshot.
 *
 * In memory, each file is one short string (see FileIndex), so a million files fit in about
 * 200 MB.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, truncate, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { writeFileAtomic } from "../atomic-file";

export const INDEX_VERSION = 2;

export interface IndexEntry {
  /** Workload that owns the file, for per-workload status. */
  workload: string;
  size: number;
  /** Stat stamps as the walk gives them (base 36): equal stamps mean an untouched file. */
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
  /** ISO time of the upload (or adoption), to the second. */
  sentAt: string;
  /**
   * The object, when its ETag is not the file's MD5 (compressed: see compression.ts; or adopted
   * from a multipart upload): its size and ETag, which retention checks in the bucket before it
   * deletes the file.
   */
  stored?: StoredObject;
}

export interface StoredObject {
  size: number;
  etag: string;
}

/** A multipart upload started and not completed, and the file it was started for. */
export interface PendingUpload {
  uploadId: string;
  /** ISO time it was created; empty when unknown (an index written before resumes). */
  startedAt: string;
  /** The file it sends (its size, mtime and inode stamps): a resume needs the same file. */
  size?: number;
  mtimeNs?: string;
  ino?: string;
  partSize?: number;
}

/** Pending uploads as stored; an upload id alone (older indexes) cannot be resumed. */
function pendingFrom(
  stored: Record<string, string | PendingUpload>,
): Record<string, PendingUpload> {
  const out: Record<string, PendingUpload> = {};
  for (const [key, value] of Object.entries(stored ?? {}))
    out[key] = typeof value === "string" ? { uploadId: value, startedAt: "" } : value;
  return out;
}

export interface WorkloadSyncState {
  lastSyncTime?: string;
  lastUploadTime?: string;
  lastError?: string;
}

export interface Destination {
  endpoint: string;
  bucket: string;
}

/** Where the index stands on disk (kept by IndexStore). */
interface Persisted {
  generation: number;
  /** No snapshot of this index's format yet: the next save writes one. */
  needsSnapshot: boolean;
  snapshotBytes: number;
  journalBytes: number;
  /** The last meta record written, to write it again only when it changed. */
  metaText: string;
  /** An append failed and may have left part of a record after journalBytes. */
  journalTorn?: boolean;
}

export interface DestinationIndex extends Destination {
  version: typeof INDEX_VERSION;
  files: FileIndex;
  /**
   * Multipart uploads in flight, by object key: aborted on the next start after a crash, or
   * resumed when the device config asks for it (see PendingUpload).
   */
  pendingUploads: Record<string, PendingUpload>;
  /** Key prefixes already listed in the bucket: listed once, to adopt objects already there. */
  listedPrefixes: string[];
  workloads: Record<string, WorkloadSyncState>;
  persisted: Persisted;
}

const SEP = " ";

/**
 * Files by object key. Each entry is packed into one string of about 60 characters (numbers in
 * base 36, the MD5 in base 64, the workload as a number): a million plain objects with string
 * fields took over 400 MB. Every change is remembered until the next save, which journals it.
 */
export class FileIndex {
  private readonly packed = new Map<string, string>();
  private names: string[] = [];
  private readonly numbers = new Map<string, number>();
  private readonly totals = new Map<string, { files: number; bytes: number }>();
  /** Changes since the last save, by key: the new packed entry, or null when removed. */
  changes = new Map<string, string | null>();

  /**
   * The changes so far, handed to a save; changes made while it writes collect anew. A save that
   * fails gives them back with `restoreChanges`.
   */
  takeChanges(): Map<string, string | null> {
    const taken = this.changes;
    this.changes = new Map();
    return taken;
  }

  /** Puts back the changes of a failed save, under any newer change to the same key. */
  restoreChanges(taken: Map<string, string | null>): void {
    for (const [key, value] of taken) if (!this.changes.has(key)) this.changes.set(key, value);
  }

  get size(): number {
    return this.packed.size;
  }

  has(key: string): boolean {
    return this.packed.has(key);
  }

  get(key: string): IndexEntry | undefined {
    const value = this.packed.get(key);
    return value === undefined ? undefined : this.unpack(value);
  }

  set(key: string, entry: IndexEntry): void {
    this.remove(key);
    const value = this.pack(entry);
    this.packed.set(key, value);
    this.count(entry.workload, entry.size, 1);
    this.changes.set(key, value);
  }

  delete(key: string): boolean {
    if (!this.remove(key)) return false;
    this.changes.set(key, null);
    return true;
  }

  keys(): IterableIterator<string> {
    return this.packed.keys();
  }

  /** True when the entry for `key` has the size and stat stamps of `file`: an untouched file. */
  hasStat(key: string, file: Pick<IndexEntry, "size" | "mtimeNs" | "ctimeNs" | "ino">): boolean {
    const value = this.packed.get(key);
    return (
      value !== undefined &&
      value.startsWith(
        `${file.size.toString(36)}${SEP}${file.mtimeNs}${SEP}${file.ctimeNs}${SEP}${file.ino}${SEP}`,
      )
    );
  }

  /** Each key with the name of its workload (cheaper than entries()). */
  *keysWithWorkload(): Generator<[string, string]> {
    for (const [key, value] of this.packed)
      yield [key, this.names[Number(value.slice(value.lastIndexOf(SEP) + 1))]];
  }

  *entries(): Generator<[string, IndexEntry]> {
    for (const [key, value] of this.packed) yield [key, this.unpack(value)];
  }

  /** Files and bytes per workload, kept up to date as entries change. */
  workloadTotals(): ReadonlyMap<string, { files: number; bytes: number }> {
    return this.totals;
  }

  /** The workload names the packed entries refer to by number. */
  get workloadNames(): readonly string[] {
    return this.names;
  }

  /** For loading: entries as stored, not recorded as changes. */
  restore(names: string[], key: string, value: string | null): void {
    if (names.length > this.names.length) {
      this.names = [...names];
      names.forEach((name, i) => this.numbers.set(name, i));
    }
    this.remove(key);
    if (value === null) return;
    this.packed.set(key, value);
    const [size, , , , , , workload] = value.split(SEP);
    this.count(this.names[Number(workload)], parseInt(size, 36), 1);
  }

  /** Packed entries, for a snapshot. */
  packedEntries(): IterableIterator<[string, string]> {
    return this.packed.entries();
  }

  private remove(key: string): boolean {
    const old = this.packed.get(key);
    if (old === undefined) return false;
    const [size, , , , , , workload] = old.split(SEP);
    this.count(this.names[Number(workload)], parseInt(size, 36), -1);
    this.packed.delete(key);
    return true;
  }

  private count(workload: string, bytes: number, sign: 1 | -1): void {
    const t = this.totals.get(workload) ?? { files: 0, bytes: 0 };
    t.files += sign;
    t.bytes += sign * bytes;
    if (t.files === 0) this.totals.delete(workload);
    else this.totals.set(workload, t);
  }

  private numberOf(workload: string): number {
    let n = this.numbers.get(workload);
    if (n === undefined) {
      n = this.names.length;
      this.names = [...this.names, workload];
      this.numbers.set(workload, n);
    }
    return n;
  }

  private pack(e: IndexEntry): string {
    const content = e.md5
      ? `m${Buffer.from(e.md5, "hex").toString("base64").replace(/=+$/, "")}`
      : e.etag && /^[\x21-\x7e]+$/.test(e.etag)
        ? `e${e.etag}@${(e.partSize ?? 0).toString(36)}`
        : "-";
    const stored =
      e.md5 && e.stored && /^[\x21-\x7d]+$/.test(e.stored.etag)
        ? `~${e.stored.size.toString(36)}~${e.stored.etag}`
        : "";
    const sent = Math.floor(Date.parse(e.sentAt) / 1000) || 0;
    return [
      e.size.toString(36),
      e.mtimeNs,
      e.ctimeNs,
      e.ino,
      content + stored,
      sent.toString(36),
      this.numberOf(e.workload),
    ].join(SEP);
  }

  private unpack(value: string): IndexEntry {
    const [size, mtimeNs, ctimeNs, ino, content, sent, workload] = value.split(SEP);
    const entry: IndexEntry = {
      workload: this.names[Number(workload)],
      size: parseInt(size, 36),
      mtimeNs,
      ctimeNs,
      ino,
      sentAt: new Date(parseInt(sent, 36) * 1000).toISOString(),
    };
    if (content[0] === "m") {
      const [md5, storedSize, storedEtag] = content.slice(1).split("~");
      entry.md5 = Buffer.from(md5, "base64").toString("hex");
      if (storedEtag) entry.stored = { size: parseInt(storedSize, 36), etag: storedEtag };
    }
    if (content[0] === "e") {
      const at = content.lastIndexOf("@");
      entry.etag = content.slice(1, at);
      entry.partSize = parseInt(content.slice(at + 1), 36);
    }
    return entry;
  }
}

export function emptyIndex(destination: Destination): DestinationIndex {
  return {
    version: INDEX_VERSION,
    endpoint: destination.endpoint,
    bucket: destination.bucket,
    files: new FileIndex(),
    pendingUploads: {},
    listedPrefixes: [],
    workloads: {},
    persisted: {
      generation: 0,
      needsSnapshot: true,
      snapshotBytes: 0,
      journalBytes: 0,
      metaText: "",
    },
  };
}

function indexId(destination: Destination): string {
  return createHash("sha256")
    .update(`${destination.endpoint}\n${destination.bucket}`)
    .digest("hex")
    .slice(0, 20);
}

export type LoadedIndex =
  | { state: "found"; index: DestinationIndex; tornRecords?: number }
  | { state: "missing"; index: DestinationIndex }
  | { state: "corrupt"; index: DestinationIndex; setAsideAs: string };

/** A snapshot of the journal is written once the journal is this large and larger than it. */
const MIN_COMPACT_BYTES = 4 << 20;

export class IndexStore {
  constructor(private readonly stateDir: string) {}

  /** The snapshot's path (the index's name in the state dir). */
  pathOf(destination: Destination): string {
    return join(this.stateDir, `index-${indexId(destination)}.snap`);
  }

  journalPath(destination: Destination, generation: number): string {
    return join(this.stateDir, `index-${indexId(destination)}.${generation}.log`);
  }

  /** A version 1 index, read once and replaced. */
  private legacyPath(destination: Destination): string {
    return join(this.stateDir, `index-${indexId(destination)}.json`);
  }

  /**
   * Reads the index of a destination. The owner of the state dir (under its lock) also tidies
   * it: stale journals removed, a torn record cut, a corrupt snapshot set aside; `readOnly`
   * (for `status`, which holds no lock) only reads, so it can never race the running agent.
   */
  async load(destination: Destination, readOnly = false): Promise<LoadedIndex> {
    const path = this.pathOf(destination);
    const index = emptyIndex(destination);
    const snapshot = await readSnapshot(path, index);
    if (snapshot === "missing") return this.loadLegacy(destination, readOnly);
    if (snapshot === "corrupt") return this.setAside(path, destination, readOnly);
    if (!readOnly) await this.removeStaleJournals(destination, index.persisted.generation);
    const journal = this.journalPath(destination, index.persisted.generation);
    const names = [...index.files.workloadNames];
    const replay = (await scanRecords(journal, (buf, line) => apply(buf, line, index, names))) ?? {
      good: 0,
      size: 0,
    };
    index.persisted.journalBytes = replay.good;
    index.persisted.metaText = metaText(index);
    if (replay.good === replay.size) return { state: "found", index };
    const tornRecords = await countLines(journal, replay.good);
    if (!readOnly) await truncate(journal, replay.good);
    return { state: "found", index, tornRecords };
  }

  private async loadLegacy(destination: Destination, readOnly: boolean): Promise<LoadedIndex> {
    const path = this.legacyPath(destination);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return { state: "missing", index: emptyIndex(destination) };
      throw err;
    }
    const index = fromLegacy(text, destination);
    if (!index) return this.setAside(path, destination, readOnly);
    return { state: "found", index };
  }

  private async setAside(
    path: string,
    destination: Destination,
    readOnly: boolean,
  ): Promise<LoadedIndex> {
    const setAsideAs = readOnly ? path : `${path}.corrupt`;
    if (!readOnly) await rename(path, setAsideAs);
    return { state: "corrupt", index: emptyIndex(destination), setAsideAs };
  }

  private async removeStaleJournals(destination: Destination, generation: number): Promise<void> {
    const prefix = `index-${indexId(destination)}.`;
    const current = this.journalPath(destination, generation).split("/").pop();
    for (const name of await readdir(this.stateDir))
      if (name.startsWith(prefix) && name.endsWith(".log") && name !== current)
        await unlink(join(this.stateDir, name)).catch(() => undefined);
  }

  /**
   * Writes what changed since the last save: journal records, or a new snapshot when one is due.
   * A failed save leaves the changes to the next one.
   */
  async save(index: DestinationIndex): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const p = index.persisted;
    if (p.needsSnapshot || (p.journalBytes > MIN_COMPACT_BYTES && p.journalBytes > p.snapshotBytes))
      return this.compact(index);
    const lines: string[] = [];
    const meta = metaText(index);
    if (meta !== p.metaText) lines.push(record("M", meta));
    const changes = index.files.takeChanges();
    for (const [key, value] of changes)
      lines.push(value === null ? record("D", JSON.stringify(key)) : fileRecord(key, value));
    if (!lines.length) return;
    try {
      await this.append(index, lines.join(""));
    } catch (err) {
      index.files.restoreChanges(changes);
      throw err;
    }
    p.metaText = meta;
  }

  private async append(index: DestinationIndex, data: string): Promise<void> {
    const p = index.persisted;
    const path = this.journalPath(index, p.generation);
    // A failed append may have left part of a record: cut back to the last whole one first, or
    // every record after it would be lost at the next load.
    if (p.journalTorn) {
      await truncate(path, p.journalBytes).catch(err => {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      });
      p.journalTorn = false;
    }
    const file = await open(path, "a", 0o600);
    try {
      await file.writeFile(data);
      await file.datasync();
    } catch (err) {
      p.journalTorn = true;
      await truncate(path, p.journalBytes)
        .then(() => (p.journalTorn = false))
        .catch(() => undefined);
      throw err;
    } finally {
      await file.close();
    }
    if (p.journalBytes === 0) await syncDirectory(this.stateDir);
    p.journalBytes += Buffer.byteLength(data);
  }

  /** A new snapshot of the whole index, then the next generation's (empty) journal. */
  private async compact(index: DestinationIndex): Promise<void> {
    const p = index.persisted;
    const generation = p.generation + 1;
    const meta = metaText(index);
    let bytes = 0;
    const lines = function* (): Generator<string> {
      for (const line of [record("H", headerText(index, generation)), record("M", meta)]) {
        bytes += Buffer.byteLength(line);
        yield line;
      }
      for (const [key, value] of index.files.packedEntries()) {
        const line = fileRecord(key, value);
        bytes += Buffer.byteLength(line);
        yield line;
      }
    };
    // Entries are read as the snapshot is written: a change made meanwhile may or may not be in
    // it, and stays in `changes` for the next generation's journal either way.
    const changes = index.files.takeChanges();
    try {
      await writeFileAtomic(this.pathOf(index), lines());
    } catch (err) {
      index.files.restoreChanges(changes);
      throw err;
    }
    await unlink(this.journalPath(index, p.generation)).catch(() => undefined);
    await unlink(this.legacyPath(index)).catch(() => undefined);
    Object.assign(p, {
      generation,
      needsSnapshot: false,
      snapshotBytes: bytes,
      journalBytes: 0,
      metaText: meta,
    });
  }

  /** Every index in the state directory, read only (for `status`). */
  async all(): Promise<DestinationIndex[]> {
    let names: string[];
    try {
      names = await readdir(this.stateDir);
    } catch {
      return [];
    }
    const indexes: DestinationIndex[] = [];
    for (const name of names.filter(n => /^index-[0-9a-f]+\.(snap|json)$/.test(n))) {
      const destination = await destinationOf(join(this.stateDir, name)).catch(() => undefined);
      if (!destination) continue; // a torn index is reported by load(), not here
      if (name.endsWith(".json") && names.includes(name.replace(/json$/, "snap"))) continue;
      const loaded = await this.load(destination, true).catch(() => undefined);
      if (loaded?.state === "found") indexes.push(loaded.index);
    }
    return indexes;
  }
}

/** One line: the CRC-32 of the record (8 hex digits), the record, a newline. */
function record(type: string, payload: string): string {
  const body = type + payload;
  return `${crc32(body).toString(16).padStart(8, "0")}${body}\n`;
}

const fileRecord = (key: string, value: string) => record("F", `${JSON.stringify(key)}\t${value}`);

function metaText(index: DestinationIndex): string {
  return JSON.stringify({
    names: index.files.workloadNames,
    pendingUploads: index.pendingUploads,
    listedPrefixes: index.listedPrefixes,
    workloads: index.workloads,
  });
}

function headerText(index: DestinationIndex, generation: number): string {
  return JSON.stringify({
    version: INDEX_VERSION,
    endpoint: index.endpoint,
    bucket: index.bucket,
    generation,
  });
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface Line {
  type: string;
  /** The payload's bytes are buf[start, end). */
  start: number;
  end: number;
}

/** The lines of `buf` whose CRC matches, up to the first that does not (or lacks its newline). */
function* lines(buf: Buffer): Generator<Line & { next: number }> {
  let at = 0;
  while (at < buf.length) {
    const newline = buf.indexOf(10, at);
    if (newline < 0 || newline - at < 9) return;
    const crc = parseInt(buf.toString("latin1", at, at + 8), 16);
    if (crc32(buf.subarray(at + 8, newline)) !== crc) return;
    yield {
      type: String.fromCharCode(buf[at + 8]),
      start: at + 9,
      end: newline,
      next: newline + 1,
    };
    at = newline + 1;
  }
}

/** Applies one record to the index; false for a record that has no place here. */
function apply(buf: Buffer, line: Line, index: DestinationIndex, names: string[]): boolean {
  if (line.type === "M") {
    const meta = JSON.parse(buf.toString("utf8", line.start, line.end)) as {
      names: string[];
      pendingUploads: Record<string, string | PendingUpload>;
      listedPrefixes: string[];
      workloads: Record<string, WorkloadSyncState>;
    };
    names.splice(0, names.length, ...meta.names);
    Object.assign(index, {
      pendingUploads: pendingFrom(meta.pendingUploads),
      listedPrefixes: meta.listedPrefixes,
      workloads: meta.workloads,
    });
    return true;
  }
  if (line.type === "F") {
    const tab = buf.indexOf(9, line.start);
    if (tab < 0 || tab > line.end) return false;
    index.files.restore(
      names,
      keyOf(buf, line.start, tab),
      buf.toString("latin1", tab + 1, line.end),
    );
    return true;
  }
  if (line.type === "D") {
    index.files.restore(names, keyOf(buf, line.start, line.end), null);
    return true;
  }
  return false;
}

/** A JSON string's value; most keys have no escapes and are cut out as they are. */
function keyOf(buf: Buffer, start: number, end: number): string {
  const slice = buf.subarray(start + 1, end - 1);
  return slice.includes(92)
    ? (JSON.parse(buf.toString("utf8", start, end)) as string)
    : slice.toString("utf8");
}

/**
 * Reads a file's records in 4 MiB pieces (a million-entry snapshot is about 100 MiB: read whole,
 * it would double the memory of loading it), calling `each` until it returns false or a record is
 * torn. `good` is where the last whole record accepted ends; undefined when there is no file.
 */
async function scanRecords(
  path: string,
  each: (buf: Buffer, line: Line) => boolean,
): Promise<{ good: number; size: number } | undefined> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const size = (await handle.stat()).size;
    const chunk = Buffer.allocUnsafe(4 << 20);
    let carry = Buffer.alloc(0);
    let good = 0;
    for (let position = 0; position < size; ) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const data = carry.length
        ? Buffer.concat([carry, chunk.subarray(0, bytesRead)])
        : chunk.subarray(0, bytesRead);
      let at = 0;
      for (const line of lines(data)) {
        let accepted: boolean;
        try {
          accepted = each(data, line);
        } catch {
          accepted = false;
        }
        if (!accepted) return { good, size };
        at = line.next;
        good = position - data.length + at;
      }
      const rest = data.subarray(at);
      if (rest.includes(10)) return { good, size }; // a whole line that failed its CRC
      carry = Buffer.from(rest);
    }
    return { good, size };
  } finally {
    await handle.close();
  }
}

/** Records from `offset` to the end of a file (for the log: how many were cut). */
async function countLines(path: string, offset: number): Promise<number> {
  const rest = (await readFile(path)).subarray(offset);
  return rest.toString("latin1").split("\n").filter(Boolean).length;
}

/** Reads a snapshot into `index`: "corrupt" when it is torn or not this destination's. */
async function readSnapshot(
  path: string,
  index: DestinationIndex,
): Promise<"found" | "missing" | "corrupt"> {
  const names: string[] = [];
  let first = true;
  const scanned = await scanRecords(path, (buf, line) => {
    if (!first) return apply(buf, line, index, names);
    const header = JSON.parse(buf.toString("utf8", line.start, line.end)) as Record<
      string,
      unknown
    >;
    if (
      line.type !== "H" ||
      header.version !== INDEX_VERSION ||
      header.endpoint !== index.endpoint ||
      header.bucket !== index.bucket
    )
      return false;
    index.persisted.generation = Number(header.generation);
    first = false;
    return true;
  });
  if (!scanned) return "missing";
  if (first || scanned.good !== scanned.size) return "corrupt";
  index.persisted.needsSnapshot = false;
  index.persisted.snapshotBytes = scanned.size;
  return "found";
}

/** A version 1 index (one JSON document), as this version's index; undefined when torn. */
function fromLegacy(text: string, destination: Destination): DestinationIndex | undefined {
  interface V1 {
    version: 1;
    endpoint: string;
    bucket: string;
    files: Record<string, IndexEntry>;
    pendingUploads: Record<string, string>;
    listedPrefixes: string[];
    workloads: Record<string, WorkloadSyncState>;
  }
  let v: V1;
  try {
    v = JSON.parse(text) as V1;
  } catch {
    return undefined;
  }
  if (
    typeof v !== "object" ||
    v === null ||
    v.version !== 1 ||
    v.endpoint !== destination.endpoint ||
    v.bucket !== destination.bucket ||
    typeof v.files !== "object" ||
    typeof v.pendingUploads !== "object" ||
    !Array.isArray(v.listedPrefixes) ||
    typeof v.workloads !== "object"
  )
    return undefined;
  const index = emptyIndex(destination);
  const base36 = (decimal: string) =>
    /^\d+$/.test(decimal) ? BigInt(decimal).toString(36) : decimal;
  for (const [key, e] of Object.entries(v.files))
    index.files.set(key, {
      ...e,
      mtimeNs: base36(e.mtimeNs),
      ctimeNs: base36(e.ctimeNs),
      ino: base36(e.ino),
    });
  Object.assign(index, {
    pendingUploads: pendingFrom(v.pendingUploads),
    listedPrefixes: v.listedPrefixes,
    workloads: v.workloads,
  });
  return index;
}

/** The destination an index file names in its first line (snapshot) or its fields (version 1). */
async function destinationOf(path: string): Promise<Destination | undefined> {
  if (path.endsWith(".json")) {
    const v = JSON.parse(await readFile(path, "utf8")) as Destination;
    return { endpoint: v.endpoint, bucket: v.bucket };
  }
  let destination: Destination | undefined;
  await scanRecords(path, (buf, line) => {
    const header = JSON.parse(buf.toString("utf8", line.start, line.end)) as Destination;
    destination = { endpoint: header.endpoint, bucket: header.bucket };
    return false;
  });
  return destination;
}

/**
 * Lists the regular files of one data path, `<volumes-dir>/<workload>/<source>`, with what the
 * compare step needs to tell a file changed: size, mtime and ctime in nanoseconds, inode.
 *
 * The workload controls everything below its volume, so the walk never leaves the source tree
 * (see confined.ts): the source folder must be reached without any symlink; each directory is
 * opened without following links, checked, and listed through its descriptor; a symlink is
 * followed only to a regular file whose real location is inside the source folder; symlinked
 * directories, FIFOs, sockets and device nodes are skipped, and said so. A missing source folder
 * is not an error: the workload has not written anything yet.
 *
 * Files come out one directory at a time (a producer the sync pass pulls from), so memory does
 * not grow with the tree. Within a directory the look at each entry is a synchronous call
 * through the directory's descriptor: a third of the CPU of one promise per file.
 */
import { lstatSync, opendirSync, realpathSync, statSync, type BigIntStats } from "node:fs";
import { realpath } from "node:fs/promises";
import { join } from "node:path";
import { childPath, descriptorPath, isInside, openDirectory, type PathBytes } from "./confined";

export interface LocalFile {
  /** Path relative to the source folder, `/`-separated; see `nameToKey` for names that are not UTF-8. */
  relativePath: string;
  /** What to open: the file, or for a symlink inside the tree the file it points at. */
  path: PathBytes;
  /** The source folder's real path: the file must be read from inside it. */
  root: PathBytes;
  size: number;
  /** Modification and change times in nanoseconds, and the inode, in base 36. */
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

export interface WalkProblem {
  path: string;
  error: string;
}

export interface WalkNotes {
  /** Entries that could not be read (permissions, a source that is not a plain folder). */
  problems: WalkProblem[];
  /** Entries that are not uploaded on purpose: links out of the tree, FIFOs, sockets, devices. */
  skipped: WalkProblem[];
  /** Set once the source folder was found and opened. */
  reached?: boolean;
}

export interface WalkResult extends WalkNotes {
  files: LocalFile[];
}

/** A directory of the tree, as the walk opened and checked it. */
export interface WalkedDirectory {
  /** Its path relative to the source folder ("" for the folder itself). */
  rel: string;
  /** Where it really is (checked to be inside the source folder). */
  where: PathBytes;
  /** Open on it while the hook runs: a watch set on /proc/self/fd/<fd> is on this directory. */
  fd: number;
  /** Its inode: a folder replaced at the same path is another directory. */
  ino: bigint;
}

export interface WalkOptions {
  /** Called for each directory the walk lists (the change watcher watches it). */
  onDirectory?: (dir: WalkedDirectory) => void;
}

export function toLocalFile(
  path: PathBytes,
  root: PathBytes,
  relativePath: string,
  s: BigIntStats,
): LocalFile {
  return {
    relativePath,
    path,
    root,
    size: Number(s.size),
    mtimeNs: s.mtimeNs.toString(36),
    ctimeNs: s.ctimeNs.toString(36),
    ino: s.ino.toString(36),
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The key form of a file name, one-to-one: no two names give the same key.
 * - A valid UTF-8 name is itself, except that a `%` followed by two hex digits becomes `%25`
 *   (so `caf%E9.txt` is uploaded as `caf%25E9.txt`): only such a name could read as an escape.
 * - A name that is not valid UTF-8 cannot be an S3 key as it is: each of its bytes outside
 *   printable ASCII, and every `%`, becomes `%XX` (so `caf\xe9.txt` is uploaded as `caf%E9.txt`).
 * Reading every `%XX` of a key back as the byte XX gives the name's bytes again (keyToName), so
 * the mapping cannot send two files to one object.
 */
export function nameToKey(name: Buffer, text = utf8Path(name)): string {
  if (text !== undefined) return text.includes("%") ? text.replace(ESCAPE_LIKE, "%25") : text;
  let out = "";
  for (const byte of name)
    out +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

const ESCAPE_LIKE = /%(?=[0-9A-Fa-f]{2})/g;

/** The name's bytes back from its key form (the inverse of nameToKey). */
export function keyToName(key: string): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const m of key.matchAll(/%([0-9A-Fa-f]{2})/g)) {
    parts.push(Buffer.from(key.slice(at, m.index), "utf8"), Buffer.from([parseInt(m[1], 16)]));
    at = m.index + 3;
  }
  parts.push(Buffer.from(key.slice(at), "utf8"));
  return Buffer.concat(parts);
}

/** A path's text when its bytes are valid UTF-8 (so the text names the same file). */
function utf8Path(bytes: PathBytes): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const isGone = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

/** The real path of the source folder `<volumesDir>/<sourcePath>`, or why there is none. */
async function sourceRoot(
  volumesDir: string,
  sourcePath: string,
  notes: WalkNotes,
): Promise<PathBytes | undefined> {
  let volumes: string;
  try {
    volumes = await realpath(volumesDir); // the host's own path: links here are the admin's
  } catch (err) {
    if (!isGone(err)) notes.problems.push({ path: volumesDir, error: (err as Error).message });
    return undefined;
  }
  const root = Buffer.from(join(volumes, sourcePath));
  const top = await openDirectory(root, root, true);
  if (top.state === "gone") return undefined;
  if (top.state === "refused") {
    notes.problems.push({ path: sourcePath, error: `the source folder ${top.reason}` });
    return undefined;
  }
  await top.value.handle.close();
  notes.reached = true;
  return root;
}

/** Entries handed on at most at once from one folder (see Walker.list). */
const LIST_BATCH = 1000;

interface Pending {
  dir: PathBytes;
  rel: string;
}

/**
 * The files of `<volumesDir>/<sourcePath>` (`sourcePath` is relative: `<workload>/<source>`), one
 * directory's worth at a time, in no particular order. Problems and skipped entries go to `notes`.
 */
export async function* walkFiles(
  volumesDir: string,
  sourcePath: string,
  notes: WalkNotes,
  options: WalkOptions = {},
): AsyncGenerator<LocalFile[]> {
  const root = await sourceRoot(volumesDir, sourcePath, notes);
  if (!root) return;
  yield* new Walker(root, notes, options).from([{ dir: root, rel: "" }]);
}

/** Collects a whole walk, sorted by path (for tests and small trees). */
export async function walk(volumesDir: string, sourcePath: string): Promise<WalkResult> {
  const result: WalkResult = { files: [], problems: [], skipped: [] };
  for await (const batch of walkFiles(volumesDir, sourcePath, result)) result.files.push(...batch);
  result.files.sort((a, b) =>
    a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0,
  );
  return result;
}

/** What a look at one named entry found (see lookAt). */
export type Look = { state: "gone" } | { state: "found"; files: AsyncGenerator<LocalFile[]> };

/**
 * A look at one entry, `name` in the directory `dir` (at `dirRel` below the source folder), after
 * a change event: the file it is, or every file below it when it is a directory; "gone" when it
 * no longer exists. The same confinement as a walk: the directory must really be inside the
 * source folder, and the entry is looked at through the directory's descriptor.
 */
export async function lookAt(
  volumesDir: string,
  sourcePath: string,
  dir: { where: PathBytes; rel: string },
  name: PathBytes,
  notes: WalkNotes,
  options: WalkOptions = {},
): Promise<Look> {
  const root = await sourceRoot(volumesDir, sourcePath, notes);
  if (!root) return { state: "gone" };
  const opened = await openDirectory(dir.where, root, dir.where.equals(root));
  if (opened.state !== "open") return { state: "gone" };
  const { handle, where } = opened.value;
  const walker = new Walker(root, notes, options);
  const relativePath = dir.rel ? `${dir.rel}/${nameToKey(name)}` : nameToKey(name);
  const pending: Pending[] = [];
  let file: LocalFile | undefined;
  try {
    const viaFd = descriptorPath(handle.fd);
    const entryViaFd = childPath(viaFd, name);
    const kind = lstatSync(entryViaFd, { throwIfNoEntry: false });
    if (!kind) return { state: "gone" };
    file = walker.entry(entryViaFd, viaFd, where, name, relativePath, kind, pending);
  } finally {
    await handle.close();
  }
  const found = async function* () {
    if (file) yield [file];
    yield* walker.from(pending);
  };
  return { state: "found", files: found() };
}

interface EntryKind {
  isDirectory(): boolean;
  isFile(): boolean;
  isSymbolicLink(): boolean;
}

/** Walks from a set of directories, depth first, one directory's files per step. */
class Walker {
  constructor(
    private readonly root: PathBytes,
    private readonly notes: WalkNotes,
    private readonly options: WalkOptions,
  ) {}

  async *from(pending: Pending[]): AsyncGenerator<LocalFile[]> {
    while (pending.length > 0) {
      const { dir, rel } = pending.pop()!;
      let opened: Awaited<ReturnType<typeof openDirectory>>;
      try {
        opened = await openDirectory(dir, this.root, dir === this.root);
      } catch (err) {
        // ENAMETOOLONG (deeper than PATH_MAX), EMFILE, EACCES: this folder only, said so.
        this.notes.problems.push({ path: rel || ".", error: (err as Error).message });
        continue;
      }
      if (opened.state === "gone") continue;
      if (opened.state === "refused") {
        this.notes.skipped.push({ path: rel, error: opened.reason });
        continue;
      }
      const { handle, where } = opened.value;
      try {
        this.options.onDirectory?.({ rel, where, fd: handle.fd, ino: opened.value.ino });
        yield* this.list(handle.fd, where, rel, pending);
      } catch (err) {
        if (!isGone(err))
          this.notes.problems.push({ path: rel || ".", error: (err as Error).message });
      } finally {
        await handle.close();
      }
    }
  }

  /**
   * Lists one open directory through its descriptor, so a swapped parent cannot redirect it, in
   * batches of at most LIST_BATCH entries (a folder of a million files never sits in memory
   * whole, and the caller's loop runs between batches).
   */
  private *list(
    fd: number,
    where: PathBytes,
    rel: string,
    pending: Pending[],
  ): Generator<LocalFile[]> {
    const viaFd = descriptorPath(fd);
    // A file's stat is read by its path below `where` (half the cost of a path through
    // /proc/self/fd): a parent swapped meanwhile can only mislead the decision to send, since
    // every read opens the file again and checks where it really is (readSmallFile, openFile).
    const whereText = utf8Path(where);
    const dir = opendirSync(viaFd, { encoding: "buffer" as BufferEncoding, bufferSize: 128 });
    try {
      let files: LocalFile[] = [];
      for (let entry = dir.readSync(); entry; entry = dir.readSync()) {
        const name = entry.name as unknown as Buffer;
        const text = utf8Path(name);
        const key = nameToKey(name, text);
        const relativePath = rel ? `${rel}/${key}` : key;
        const look =
          whereText !== undefined && text !== undefined
            ? `${whereText}/${text}`
            : childPath(viaFd, name);
        const file = this.entry(look, viaFd, where, name, relativePath, entry, pending);
        if (file) files.push(file);
        if (files.length >= LIST_BATCH) {
          yield files;
          files = [];
        }
      }
      if (files.length) yield files;
    } finally {
      dir.closeSync();
    }
  }

  /**
   * One entry: a file (or a symlink to a file inside the tree) comes back; a directory is queued;
   * anything else is skipped and said so.
   */
  entry(
    look: string | PathBytes,
    viaFd: PathBytes,
    where: PathBytes,
    name: PathBytes,
    relativePath: string,
    kind: EntryKind,
    pending: Pending[],
  ): LocalFile | undefined {
    const { root, notes } = this;
    try {
      if (kind.isDirectory()) {
        pending.push({ dir: childPath(where, name), rel: relativePath });
      } else if (kind.isFile()) {
        const s = lstatSync(look, { bigint: true, throwIfNoEntry: false });
        if (s?.isFile()) return toLocalFile(childPath(where, name), root, relativePath, s);
      } else if (kind.isSymbolicLink()) {
        // native: the JS realpath turns the bytes of a folder name that is not UTF-8 into U+FFFD.
        const target = realpathSync.native(childPath(viaFd, name), { encoding: "buffer" });
        const s = isInside(root, target) ? statSync(target, { bigint: true }) : undefined;
        if (s?.isFile()) return toLocalFile(target, root, relativePath, s);
        notes.skipped.push({
          path: relativePath,
          error: "a symlink that leads out of the source folder or to a folder: not followed",
        });
      } else {
        notes.skipped.push({
          path: relativePath,
          error: "not a regular file (FIFO, socket or device): not read",
        });
      }
    } catch (err) {
      // Removed between the listing and the look: not a problem. A symlink loop (ELOOP) is skipped.
      if ((err as NodeJS.ErrnoException).code === "ELOOP")
        notes.skipped.push({ path: relativePath, error: "a symlink loop: not followed" });
      else if (!isGone(err))
        notes.problems.push({ path: relativePath, error: (err as Error).message });
    }
    return undefined;
  }
}

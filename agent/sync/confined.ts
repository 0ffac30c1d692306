/**
 * Reading inside a tree that a hostile workload controls. A workload can put any symlink, FIFO,
 * socket or device node in its volume, and swap one for a file between two looks. So nothing
 * is read by path after a check of that path: every directory and file is opened without
 * following a final symlink (O_NOFOLLOW) and without blocking (O_NONBLOCK, so a FIFO cannot
 * hang the agent); the descriptor is then checked (its type by fstat; where it really is by
 * /proc/self/fd/N, which the kernel resolves, so a swapped parent directory shows), and only that
 * descriptor is read. This is what rsync's 2024 fixes and Go's os.Root do.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readlinkSync,
  readSync,
  type BigIntStats,
} from "node:fs";
import { lstat, open, readlink, type FileHandle } from "node:fs/promises";

const SLASH = Buffer.from("/");
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const DIR_FLAGS = FILE_FLAGS | constants.O_DIRECTORY;

/** A path as bytes: names on Linux need not be valid UTF-8. */
export type PathBytes = Buffer;

export function childPath(dir: PathBytes, name: PathBytes): PathBytes {
  return Buffer.concat([dir, SLASH, name]);
}

/** True when `path` is `root` or below it (byte-wise, so no decoding can blur the two). */
export function isInside(root: PathBytes, path: PathBytes): boolean {
  if (path.equals(root)) return true;
  return (
    path.length > root.length &&
    path.subarray(0, root.length).equals(root) &&
    path[root.length] === SLASH[0]
  );
}

/** The path of what descriptor `fd` is open on, as the kernel resolves it. */
export function descriptorPath(fd: number): PathBytes {
  return Buffer.from(`/proc/self/fd/${fd}`);
}

/** Where the kernel says an open descriptor is. Fails where /proc is not mounted. */
export async function locate(handle: FileHandle): Promise<PathBytes> {
  return readlink(descriptorPath(handle.fd), { encoding: "buffer" });
}

export type Opened<T> =
  | { state: "open"; value: T }
  | { state: "gone" }
  | { state: "refused"; reason: string };

const GONE = new Set(["ENOENT", "ENOTDIR"]);

async function refusedDirectory(path: PathBytes): Promise<Opened<never>> {
  try {
    const s = await lstat(path);
    const reason = s.isSymbolicLink() ? "is a symlink: not followed" : "is not a directory";
    return { state: "refused", reason };
  } catch {
    return { state: "gone" };
  }
}

/** What an open that failed means, or the error itself when it means nothing expected. */
function failedOpen(err: unknown, flags: number): Opened<never> | "look" {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  // O_DIRECTORY on a symlink or a file says ENOTDIR: look without following to tell which.
  if (code === "ENOTDIR" && flags & constants.O_DIRECTORY) return "look";
  if (GONE.has(code)) return { state: "gone" };
  if (code === "ELOOP") return { state: "refused", reason: "is a symlink: not followed" };
  // A FIFO or device node that refuses a non-blocking open, for instance.
  if (code === "ENXIO" || code === "ENODEV")
    return { state: "refused", reason: "is not a regular file" };
  throw err;
}

/** Opens a path without following a final symlink and without blocking; `check` sees the descriptor. */
async function openChecked<T>(
  path: PathBytes,
  flags: number,
  check: (handle: FileHandle, stat: BigIntStats, where: PathBytes) => Opened<T>,
): Promise<Opened<T>> {
  let handle: FileHandle;
  try {
    handle = await open(path, flags);
  } catch (err) {
    const failed = failedOpen(err, flags);
    return failed === "look" ? refusedDirectory(path) : failed;
  }
  try {
    const result = check(handle, await handle.stat({ bigint: true }), await locate(handle));
    if (result.state !== "open") await handle.close();
    return result;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Opens a directory of the tree: it must be a directory (not a symlink) and lie at or below
 * `root`; `exact` demands that it is exactly where `path` says (no symlink anywhere on the way).
 */
export function openDirectory(
  path: PathBytes,
  root: PathBytes,
  exact = false,
): Promise<Opened<{ handle: FileHandle; where: PathBytes; ino: bigint }>> {
  return openChecked(path, DIR_FLAGS, (handle, stat, where) => {
    if (!stat.isDirectory()) return { state: "refused", reason: "is not a directory" };
    if (exact ? !where.equals(path) : !isInside(root, where))
      return { state: "refused", reason: "is reached through a symlink: not followed" };
    return { state: "open", value: { handle, where, ino: stat.ino } };
  });
}

const fileCheck = (
  stat: BigIntStats,
  where: PathBytes,
  root: PathBytes,
): Opened<never> | undefined => {
  if (!stat.isFile()) return { state: "refused", reason: "is not a regular file" };
  if (!isInside(root, where))
    return { state: "refused", reason: "lies outside the source folder: not read" };
  return undefined;
};

export interface SmallFile {
  data: Buffer;
  /** The file's stat after the read. */
  stat: BigIntStats;
  /** False when it changed during every one of a few reads (it is being written). */
  stable: boolean;
}

const sameStat = (a: BigIntStats, b: BigIntStats) =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/**
 * Reads a small file whole, with the checks of openFile, through synchronous calls: for a file
 * of a few KiB in the page cache they cost a third of the CPU of the promise-based ones, and
 * block for microseconds. The bytes match one fstat of the file (read again, a few times, if it
 * changed meanwhile). "large" when the file is now larger than `limit`: read it by streaming.
 */
export function readSmallFile(
  path: PathBytes,
  root: PathBytes,
  limit: number,
): Opened<SmallFile> | { state: "large" } {
  let fd: number;
  try {
    fd = openSync(path, FILE_FLAGS);
  } catch (err) {
    return failedOpen(err, FILE_FLAGS) as Opened<never>;
  }
  try {
    let before = fstatSync(fd, { bigint: true });
    const refused = fileCheck(
      before,
      readlinkSync(descriptorPath(fd), { encoding: "buffer" }),
      root,
    );
    if (refused) return refused;
    for (let attempt = 0; ; attempt++) {
      if (before.size > BigInt(limit)) return { state: "large" };
      const data = Buffer.allocUnsafe(Number(before.size));
      let filled = 0;
      while (filled < data.length) {
        const n = readSync(fd, data, filled, data.length - filled, filled);
        if (n === 0) break; // truncated meanwhile
        filled += n;
      }
      const after = fstatSync(fd, { bigint: true });
      const stable = sameStat(before, after) && BigInt(filled) === after.size;
      if (stable || attempt === 4)
        return { state: "open", value: { data: data.subarray(0, filled), stat: after, stable } };
      before = after;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a file to read: a regular file whose real location is inside `root`. The caller reads
 * only from the returned descriptor, and closes it.
 */
export function openFile(
  path: PathBytes,
  root: PathBytes,
): Promise<Opened<{ handle: FileHandle; stat: BigIntStats }>> {
  return openChecked(
    path,
    FILE_FLAGS,
    (handle, stat, where) =>
      fileCheck(stat, where, root) ?? { state: "open", value: { handle, stat } },
  );
}

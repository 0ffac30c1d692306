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
 */
import type { BigIntStats } from "node:fs";
import { lstat, readdir, realpath, stat } from "node:fs/promises";
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
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

export interface WalkProblem {
  path: string;
  error: string;
}

export interface WalkResult {
  files: LocalFile[];
  /** Entries that could not be read (permissions, a source that is not a plain folder). */
  problems: WalkProblem[];
  /** Entries that are not uploaded on purpose: links out of the tree, FIFOs, sockets, devices. */
  skipped: WalkProblem[];
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
    mtimeNs: s.mtimeNs.toString(),
    ctimeNs: s.ctimeNs.toString(),
    ino: s.ino.toString(),
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The key form of a file name. A valid UTF-8 name is itself. A name that is not valid UTF-8
 * cannot be an S3 key as it is: each of its bytes outside printable ASCII, and `%`, becomes
 * `%XX` (so `caf\xe9.txt` is uploaded as `caf%E9.txt`).
 */
export function nameToKey(name: Buffer): string {
  try {
    return utf8.decode(name);
  } catch {
    let out = "";
    for (const byte of name)
      out +=
        byte >= 0x20 && byte < 0x7f && byte !== 0x25
          ? String.fromCharCode(byte)
          : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    return out;
  }
}

const isGone = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

/** Walks `<volumesDir>/<sourcePath>`; `sourcePath` is relative (`<workload>/<source>`). */
export async function walk(volumesDir: string, sourcePath: string): Promise<WalkResult> {
  const result: WalkResult = { files: [], problems: [], skipped: [] };
  let volumes: string;
  try {
    volumes = await realpath(volumesDir); // the host's own path: links here are the admin's
  } catch (err) {
    if (!isGone(err)) result.problems.push({ path: volumesDir, error: (err as Error).message });
    return result;
  }
  const root = Buffer.from(join(volumes, sourcePath));
  const top = await openDirectory(root, root, true);
  if (top.state === "gone") return result;
  if (top.state === "refused") {
    result.problems.push({ path: sourcePath, error: `the source folder ${top.reason}` });
    return result;
  }
  await top.value.handle.close();

  const pending: { dir: PathBytes; rel: string }[] = [{ dir: root, rel: "" }];
  while (pending.length > 0) {
    const { dir, rel } = pending.pop()!;
    const opened = await openDirectory(dir, root, dir === root);
    if (opened.state === "gone") continue;
    if (opened.state === "refused") {
      result.skipped.push({ path: rel, error: opened.reason });
      continue;
    }
    const { handle, where } = opened.value;
    try {
      await listDirectory(handle.fd, where, rel, root, pending, result);
    } catch (err) {
      if (!isGone(err)) result.problems.push({ path: rel || ".", error: (err as Error).message });
    } finally {
      await handle.close();
    }
  }
  result.files.sort((a, b) =>
    a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0,
  );
  return result;
}

/** Lists one open directory through its descriptor, so a swapped parent cannot redirect it. */
async function listDirectory(
  fd: number,
  where: PathBytes,
  rel: string,
  root: PathBytes,
  pending: { dir: PathBytes; rel: string }[],
  result: WalkResult,
): Promise<void> {
  const viaFd = descriptorPath(fd);
  const entries = await readdir(viaFd, { withFileTypes: true, encoding: "buffer" });
  for (const entry of entries) {
    const name = entry.name as unknown as Buffer;
    const relativePath = rel ? `${rel}/${nameToKey(name)}` : nameToKey(name);
    const entryViaFd = childPath(viaFd, name);
    try {
      if (entry.isDirectory()) {
        pending.push({ dir: childPath(where, name), rel: relativePath });
      } else if (entry.isFile()) {
        const s = await lstat(entryViaFd, { bigint: true });
        if (s.isFile())
          result.files.push(toLocalFile(childPath(where, name), root, relativePath, s));
      } else if (entry.isSymbolicLink()) {
        const target = await realpath(entryViaFd, { encoding: "buffer" });
        const s = isInside(root, target) ? await stat(target, { bigint: true }) : undefined;
        if (s?.isFile()) result.files.push(toLocalFile(target, root, relativePath, s));
        else
          result.skipped.push({
            path: relativePath,
            error: "a symlink that leads out of the source folder or to a folder: not followed",
          });
      } else {
        result.skipped.push({
          path: relativePath,
          error: "not a regular file (FIFO, socket or device): not read",
        });
      }
    } catch (err) {
      // Removed between the listing and the look: not a problem. A symlink loop (ELOOP) is skipped.
      if ((err as NodeJS.ErrnoException).code === "ELOOP")
        result.skipped.push({ path: relativePath, error: "a symlink loop: not followed" });
      else if (!isGone(err))
        result.problems.push({ path: relativePath, error: (err as Error).message });
    }
  }
}

/**
 * Lists the regular files under a data path's source directory with what the compare step
 * needs to tell a file changed: size, mtime and ctime in nanoseconds, inode.
 *
 * Never leaves the source tree: a symlink is followed only when it resolves to a regular file
 * inside the source root; symlinked directories are not entered (no cycles, no escapes).
 * A missing source directory is not an error: the workload has not written anything yet.
 */
import { lstat, readdir, realpath, stat } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import { join, relative, sep } from "node:path";

export interface LocalFile {
  /** Path relative to the source root, platform separators. */
  relativePath: string;
  absolutePath: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

export interface WalkResult {
  files: LocalFile[];
  /** Entries that could not be read (permissions, vanished mid-walk); the walk goes on. */
  problems: { path: string; error: string }[];
}

export function toLocalFile(absolutePath: string, relativePath: string, s: BigIntStats): LocalFile {
  return {
    relativePath,
    absolutePath,
    size: Number(s.size),
    mtimeNs: s.mtimeNs.toString(),
    ctimeNs: s.ctimeNs.toString(),
    ino: s.ino.toString(),
  };
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

export async function walk(sourceRoot: string): Promise<WalkResult> {
  const result: WalkResult = { files: [], problems: [] };
  let root: string;
  try {
    root = await realpath(sourceRoot);
    if (!(await stat(root)).isDirectory()) return result;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      result.problems.push({ path: sourceRoot, error: (err as Error).message });
    }
    return result;
  }

  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      // A directory removed between listing its parent and reading it is not a problem.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        result.problems.push({ path: dir, error: (err as Error).message });
      }
      continue;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      try {
        if (entry.isDirectory()) {
          pending.push(path);
        } else if (entry.isFile()) {
          result.files.push(
            toLocalFile(path, relative(root, path), await lstat(path, { bigint: true })),
          );
        } else if (entry.isSymbolicLink()) {
          const resolved = await realpath(path);
          if (!inside(root, resolved)) continue;
          const s = await stat(resolved, { bigint: true });
          if (s.isFile()) result.files.push(toLocalFile(path, relative(root, path), s));
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
          result.problems.push({ path, error: (err as Error).message });
        }
      }
    }
  }
  result.files.sort((a, b) =>
    a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0,
  );
  return result;
}

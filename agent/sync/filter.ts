/**
 * Which files of a data path are uploaded, and when: its include and exclude globs, and its quiet
 * period. Pure.
 *
 * Globs are matched against the path relative to the source folder, `/`-separated: `*` and `?`
 * match within one segment, `**` across segments, `[abc]` / `[!abc]` one character of a set. A
 * glob without `/` matches a name at any depth (`*.tmp` is `**\/*.tmp`). An exclude glob also
 * matches the folders a file is in (`cache` or `cache/**` leaves out everything below a folder
 * named cache). Exclude wins over include; no include means every file.
 */
import type { DataPath } from "../config/device-config";
import { compileGlob, type Glob } from "./glob";

export interface PathFilter {
  /** True when the file at `relativePath` is uploaded at all. */
  wanted(relativePath: string): boolean;
  /** Milliseconds a file must stay unchanged before it is sent (0: off). */
  quietMs: number;
}

/** Every file, at once: a path without include, exclude or quietSeconds. */
export const EVERYTHING: PathFilter = { wanted: () => true, quietMs: 0 };

export function pathFilter(
  path: Pick<DataPath, "include" | "exclude" | "quietSeconds">,
): PathFilter {
  const include = (path.include ?? []).map(pathGlob);
  const exclude = (path.exclude ?? []).map(pathGlob);
  const quietMs = (path.quietSeconds ?? 0) * 1000;
  if (!include.length && !exclude.length) return quietMs ? { ...EVERYTHING, quietMs } : EVERYTHING;
  return {
    quietMs,
    wanted(relativePath) {
      if (include.length && !include.some(g => g.matches(relativePath))) return false;
      return !exclude.some(g => g.matchesOrIsBelow(relativePath));
    },
  };
}

/**
 * The matcher of one glob (see the file comment): linear in the path's length, whatever the glob
 * (glob.ts). Throws on a glob that globProblem refuses.
 */
export function pathGlob(glob: string): Glob {
  const anchored = glob.includes("/") ? glob.replace(/^\.\//, "") : `**/${glob}`;
  return compileGlob(anchored.replace(/\/+$/, ""));
}

/** True while a file changed (ctime: written, renamed in, chmod-ed) within the quiet period. */
export function stillQuieting(ctimeNs36: string, quietMs: number, now: number): boolean {
  return quietMs > 0 && now - changedAtMs(ctimeNs36) < quietMs;
}

/** The time (ms) a file's ctime stamp (nanoseconds in base 36, see walk.ts) stands for. */
export function changedAtMs(ctimeNs36: string): number {
  return parseInt(ctimeNs36, 36) / 1e6;
}

/**
 * Which files are waiting: wanted by their data path and not in the index as they are now (so not
 * confirmed in the bucket). A walk of its own, independent of how passes find files, so a watch
 * or scan that stops finding files while files are written still shows: the age of the oldest
 * waiting file (by its last change) grows. Reads only (the index, and stat through the walk).
 */
import { join } from "node:path";
import type { WorkloadPaths } from "../config/device-config";
import { changedAtMs, pathFilter } from "./filter";
import type { FileIndex } from "./index-store";
import { MAX_KEY_BYTES, normalizeTarget, pathKeys } from "./keys";
import { walkFiles } from "./walk";

export interface Waiting {
  files: number;
  /** The last change (ms) of the oldest waiting file. */
  oldestChangeMs?: number;
}

export async function census(
  volumesDir: string,
  workloads: WorkloadPaths[],
  keyPrefix: string | undefined,
  index: FileIndex,
): Promise<Waiting> {
  const waiting: Waiting = { files: 0 };
  for (const workload of workloads)
    for (const path of workload.paths) {
      const source = normalizeTarget(path.source);
      const { prefix, suffix } = pathKeys(keyPrefix, path);
      const filter = pathFilter(path);
      const notes = { problems: [], skipped: [] };
      const sourcePath = source ? join(workload.name, source) : workload.name;
      for await (const batch of walkFiles(volumesDir, sourcePath, notes))
        for (const file of batch) {
          const key = prefix + file.relativePath + suffix;
          if (Buffer.byteLength(key) > MAX_KEY_BYTES || !filter.wanted(file.relativePath)) continue;
          if (index.hasStat(key, file)) continue;
          waiting.files++;
          const changed = changedAtMs(file.ctimeNs);
          waiting.oldestChangeMs = Math.min(waiting.oldestChangeMs ?? changed, changed);
        }
    }
  return waiting;
}

/**
 * `flotta-agent explain PATH`: why a file is, or is not yet, in the bucket, answered from the
 * device config and the state dir (the index, the failure and deletion records); nothing is
 * written and the S3 server is not asked. `explain` is pure: the command gathers the facts.
 */
import type { DataPath, DeviceConfig } from "./config/device-config";
import { formatBytes } from "./config/quantity";
import { describeWindow, windowNow } from "./sync/bandwidth-window";
import type { Deletion } from "./sync/deletion-log";
import type { Failure } from "./sync/failure-log";
import { changedAtMs, pathGlob } from "./sync/filter";
import type { IndexEntry } from "./sync/index-store";
import { MAX_KEY_BYTES, normalizeTarget, pathKeys } from "./sync/keys";
import { nameToKey } from "./sync/walk";

export interface Located {
  workload: string;
  path: DataPath;
  /** The file's path relative to the data path's source, in key form. */
  relativePath: string;
  key: string;
}

export interface Facts {
  config: DeviceConfig;
  located?: Located;
  /** The file's stamps now; undefined when it does not exist. */
  file?: { size: number; mtimeNs: string; ctimeNs: string; ino: string };
  /** Its index entry, in the config's destination. */
  entry?: IndexEntry;
  deletion?: Deletion;
  failure?: Failure;
  now: number;
}

/**
 * The data path a file below the volumes dir belongs to (`relative`: `<workload>/<...>`, as
 * raw name bytes per segment), and its key: the path with the longest matching source.
 */
export function locate(config: DeviceConfig, segments: Buffer[]): Located | undefined {
  const [workload, ...rest] = segments.map(s => s.toString("utf8"));
  let best: Located | undefined;
  let bestLength = -1;
  for (const w of config.workloads) {
    if (w.name !== workload) continue;
    for (const path of w.paths) {
      const source = normalizeTarget(path.source).split("/").filter(Boolean);
      if (source.length >= rest.length || source.length <= bestLength) continue;
      if (!source.every((s, i) => s === rest[i])) continue;
      const relativePath = segments
        .slice(1 + source.length)
        .map(s => nameToKey(s))
        .join("/");
      const { prefix, suffix } = pathKeys(config.keyPrefix, path);
      best = { workload, path, relativePath, key: prefix + relativePath + suffix };
      bestLength = source.length;
    }
  }
  return best;
}

/** Why the path's globs leave the file out, naming the glob; undefined when it is wanted. */
export function globVerdict(path: DataPath, relativePath: string): string | undefined {
  const include = path.include ?? [];
  if (include.length && !include.some(g => pathGlob(g).matches(relativePath)))
    return `excluded: it matches none of the include globs ${include.map(g => JSON.stringify(g)).join(", ")}`;
  const exclude = (path.exclude ?? []).find(g => pathGlob(g).matchesOrIsBelow(relativePath));
  return exclude === undefined
    ? undefined
    : `excluded by the exclude glob ${JSON.stringify(exclude)}`;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function uploaded(entry: IndexEntry, key: string): string {
  const stored = entry.stored ? `, stored as ${formatBytes(entry.stored.size)}` : "";
  return `uploaded at ${entry.sentAt.replace(/\.\d{3}Z$/, "Z")} as ${key} (${formatBytes(entry.size)}${stored})`;
}

/** The answer: one line. */
export function explain(f: Facts): string {
  const where = f.located;
  if (!where) {
    const paths = f.config.workloads.flatMap(w =>
      w.paths.map(p => `${w.name}/${normalizeTarget(p.source) || "."}`),
    );
    return `not in any data path of this device (they are: ${paths.join(", ") || "none"})`;
  }
  if (!f.file) {
    if (f.deletion)
      return `deleted by retention at ${f.deletion.at}, once confirmed in the bucket as ${f.deletion.key}`;
    return "does not exist (and retention has no record of deleting it)";
  }
  const excluded = globVerdict(where.path, where.relativePath);
  if (excluded) return excluded;
  if (Buffer.byteLength(where.key) > MAX_KEY_BYTES)
    return `not uploaded: its key would be longer than ${MAX_KEY_BYTES} bytes, S3's limit`;
  const { entry, file } = f;
  const same =
    entry &&
    entry.size === file.size &&
    entry.mtimeNs === file.mtimeNs &&
    entry.ctimeNs === file.ctimeNs &&
    entry.ino === file.ino;
  if (entry && same) return uploaded(entry, where.key);
  const changed = changedAtMs(file.ctimeNs);
  const before = entry ? `; an older version was ${uploaded(entry, where.key)}` : "";
  if (f.failure && Date.parse(f.failure.at) >= changed)
    return `failed at ${f.failure.at.replace(/\.\d{3}Z$/, "Z")}: ${f.failure.error} (retried on the next scan)${before}`;
  const quietMs = (where.path.quietSeconds ?? 0) * 1000;
  if (quietMs && f.now - changed < quietMs)
    return `quiet until ${iso(changed + quietMs)}: it changed at ${iso(changed)} and its data path waits ${where.path.quietSeconds} s${before}`;
  const device = `${f.config.device.namespace}/${f.config.device.name}`;
  if (windowNow(f.config.bandwidth, device, f.now).bytesPerSecond === 0)
    return `${describeWindow(f.config.bandwidth, device, f.now)} by the bandwidth timetable${before}`;
  return `waiting: changed at ${iso(changed)}, not uploaded yet; the next pass sends it as ${where.key}${before}`;
}

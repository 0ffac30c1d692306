/**
 * Where a device file lands in the bucket: `<target>/<path relative to the source>`, always with
 * `/` separators. Pure string work; S3 keys may hold any character, so names with spaces,
 * unicode, `#`, `?`, `%`, `+` or newlines pass through unchanged (the SDK encodes them on the wire).
 */
import { posix, sep } from "node:path";

/** `a/b/` and `./a/b` both become `a/b`. */
export function normalizeTarget(target: string): string {
  return target
    .split("/")
    .filter(segment => segment !== "" && segment !== ".")
    .join("/");
}

/** The object key of a file at `relativePath` (platform separators) under a path's source. */
export function objectKey(target: string, relativePath: string): string {
  const rel = sep === "/" ? relativePath : relativePath.split(sep).join("/");
  const prefix = normalizeTarget(target);
  return prefix ? posix.join(prefix, rel) : rel;
}

/** The prefix that lists every object of one data path: `<target>/`. */
export function targetPrefix(target: string): string {
  const prefix = normalizeTarget(target);
  return prefix ? `${prefix}/` : "";
}

/** A data path's target below the device's key prefix (`<keyPrefix>/<target>`). */
export function prefixedTarget(keyPrefix: string | undefined, target: string): string {
  const prefix = normalizeTarget(keyPrefix ?? "");
  return prefix ? `${prefix}/${normalizeTarget(target)}` : target;
}

/** The folders a `/`-separated path is in: `a/b/c` gives `a` and `a/b`. */
export function parentPaths(path: string): string[] {
  const out: string[] = [];
  for (let at = path.indexOf("/"); at > 0; at = path.indexOf("/", at + 1))
    out.push(path.slice(0, at));
  return out;
}

/** What the keys of a compressed data path end with (see compression.ts). */
export const COMPRESSED_SUFFIX = ".gz";

/** S3 refuses longer object keys (KeyTooLongError); some compatible servers do not. */
export const MAX_KEY_BYTES = 1024;

/** Where a data path's files land: keys are `prefix + relative path + suffix`. */
export function pathKeys(
  keyPrefix: string | undefined,
  path: { target: string; compression?: string },
): { prefix: string; suffix: string } {
  return {
    prefix: targetPrefix(prefixedTarget(keyPrefix, path.target)),
    suffix: path.compression === "gzip" ? COMPRESSED_SUFFIX : "",
  };
}

/**
 * Replaces a file so that a crash leaves either the old content or the new, never a torn one:
 * temp file, fsync, rename, fsync of the directory; a failed write removes its temp file. Mode 0600: what the agent writes (its
 * index, its kubeconfig) is its own.
 */
import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

/** `data` is a string, or chunks of one (an index of a million files is written in pieces). */
export async function writeFileAtomic(
  path: string,
  data: string | Iterable<string>,
): Promise<void> {
  const dir = join(path, "..");
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const file = await open(temp, "w", 0o600);
    try {
      // writeFile writes all of it (one write() may write only part, as on a filling disk).
      if (typeof data === "string") await file.writeFile(data);
      else for (const chunk of batches(data)) await file.writeFile(chunk);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (err) {
    // A full or failing disk must not leave temp files behind to pile up.
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  const dirHandle = await open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** Joins small strings into writes of about 1 MiB. */
function* batches(chunks: Iterable<string>): Generator<string> {
  let batch: string[] = [];
  let length = 0;
  for (const chunk of chunks) {
    batch.push(chunk);
    length += chunk.length;
    if (length >= 1 << 20) {
      yield batch.join("");
      batch = [];
      length = 0;
    }
  }
  if (batch.length) yield batch.join("");
}

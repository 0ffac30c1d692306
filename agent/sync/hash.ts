/**
 * Content hashes the agent compares: the MD5 of a whole file (what a single-part S3 upload's
 * ETag is) and, for objects uploaded in parts, S3's multipart ETag (MD5 of the parts' MD5s, `-N`).
 * Reads only from a descriptor opened and checked by confined.ts.
 */
import { createHash, type Hash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";

export interface FileHashes {
  md5: string;
  /** Present when a part size was given and the file spans more than one part. */
  multipartEtag?: string;
}

const CHUNK = 1024 * 1024;

/**
 * The first `size` bytes of an open file, in 1 MiB positional reads; fewer if it was truncated
 * meanwhile. Destroying the stream leaves the descriptor open: its owner closes it.
 */
export function readRange(handle: FileHandle, size: number): Readable {
  let position = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (position >= size) return void this.push(null);
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size - position));
      handle.read(chunk, 0, chunk.length, position).then(
        ({ bytesRead }) => {
          position += bytesRead;
          this.push(bytesRead === 0 ? null : chunk.subarray(0, bytesRead));
        },
        (err: Error) => this.destroy(err),
      );
    },
  });
}

export async function hashFile(
  handle: FileHandle,
  size: number,
  partSize?: number,
  signal?: AbortSignal,
): Promise<FileHashes> {
  const whole = createHash("md5");
  const partDigests: Buffer[] = [];
  let part: Hash | undefined = partSize ? createHash("md5") : undefined;
  let inPart = 0;
  for await (const chunk of readRange(handle, size)) {
    signal?.throwIfAborted();
    whole.update(chunk);
    if (!part || !partSize) continue;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partSize - inPart, chunk.length - offset);
      part.update(chunk.subarray(offset, offset + take));
      inPart += take;
      offset += take;
      if (inPart === partSize) {
        partDigests.push(part.digest());
        part = createHash("md5");
        inPart = 0;
      }
    }
  }
  if (part && inPart > 0) partDigests.push(part.digest());
  const md5 = whole.digest("hex");
  if (partDigests.length < 2) return { md5 };
  const combined = createHash("md5").update(Buffer.concat(partDigests)).digest("hex");
  return { md5, multipartEtag: `${combined}-${partDigests.length}` };
}

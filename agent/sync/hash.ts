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

/** MD5 of the whole and, with a part size, S3's multipart ETag, fed chunk by chunk. */
class ContentHasher {
  private readonly whole = createHash("md5");
  private readonly partDigests: Buffer[] = [];
  private part: Hash | undefined;
  private inPart = 0;

  constructor(private readonly partSize?: number) {
    this.part = partSize ? createHash("md5") : undefined;
  }

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    const partSize = this.partSize;
    if (!this.part || !partSize) return;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partSize - this.inPart, chunk.length - offset);
      this.part.update(chunk.subarray(offset, offset + take));
      this.inPart += take;
      offset += take;
      if (this.inPart === partSize) {
        this.partDigests.push(this.part.digest());
        this.part = createHash("md5");
        this.inPart = 0;
      }
    }
  }

  result(): FileHashes {
    if (this.part && this.inPart > 0) this.partDigests.push(this.part.digest());
    const md5 = this.whole.digest("hex");
    if (this.partDigests.length < 2) return { md5 };
    const combined = createHash("md5").update(Buffer.concat(this.partDigests)).digest("hex");
    return { md5, multipartEtag: `${combined}-${this.partDigests.length}` };
  }
}

export async function hashFile(
  handle: FileHandle,
  size: number,
  partSize?: number,
  signal?: AbortSignal,
): Promise<FileHashes> {
  const hasher = new ContentHasher(partSize);
  for await (const chunk of readRange(handle, size)) {
    signal?.throwIfAborted();
    hasher.update(chunk);
  }
  return hasher.result();
}

/** The hashes of bytes already in memory. */
export function hashBuffer(data: Buffer, partSize?: number): FileHashes {
  const hasher = new ContentHasher(partSize);
  hasher.update(data);
  return hasher.result();
}

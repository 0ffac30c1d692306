/**
 * Content hashes the agent compares: the MD5 of a whole file (what a single-part S3 upload's
 * ETag is) and, for objects uploaded in parts, S3's multipart ETag (MD5 of the parts' MD5s, `-N`).
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";

export interface FileHashes {
  md5: string;
  /** Present when a part size was given and the file spans more than one part. */
  multipartEtag?: string;
}

export async function hashFile(path: string, partSize?: number): Promise<FileHashes> {
  const whole = createHash("md5");
  const partDigests: Buffer[] = [];
  let part: Hash | undefined = partSize ? createHash("md5") : undefined;
  let inPart = 0;
  for await (const chunk of createReadStream(path, {
    highWaterMark: 1024 * 1024,
  }) as AsyncIterable<Buffer>) {
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

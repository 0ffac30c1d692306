import { randomBytes } from "node:crypto";

/** A DNS-1123 name unique to this run, so tests never collide on a reused cluster or bucket. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

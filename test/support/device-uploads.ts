/** Files a workload writes on a device, and the wait until the bucket holds each, byte-exact. */
import * as assert from "uvu/assert";
import { createHash, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventually } from "./eventually";
import { getObject, listKeys } from "./s3";
import type { SystemdDevice } from "./systemd-device";

export const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");

/** `count` files of random bytes in `dir`, named `<prefix>-<i>.bin`; their MD5 by key under `target/`. */
export async function writeFiles(
  dir: string,
  target: string,
  prefix: string,
  count: number,
  size: number,
): Promise<Map<string, string>> {
  const written = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const data = randomBytes(size);
    await writeFile(join(dir, `${prefix}-${i}.bin`), data);
    written.set(`${target}/${prefix}-${i}.bin`, md5(data));
  }
  return written;
}

/** Waits until `bucket` holds every file, then checks each one's bytes; `why` explains a timeout. */
export async function inBucket(
  bucket: string,
  files: Map<string, string>,
  what: string,
  timeoutMs = 60_000,
  why: () => string = () => "",
): Promise<void> {
  await eventually(
    what,
    async () => {
      const keys = await listKeys(bucket);
      return [...files.keys()].every(k => keys.has(k)) ? true : undefined;
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}${why()}`);
  });
  for (const [key, sum] of files) assert.is(md5(await getObject(bucket, key)), sum, key);
}

/** A property of flotta-agent.service, as `systemctl show` gives it. */
export const unitProperty = (device: SystemdDevice, property: string) =>
  device.run(["systemctl", "show", "-p", property, "--value", "flotta-agent"]).trim();

/** The unit's journal (the agent's JSON lines and systemd's words about it). */
export const unitJournal = (device: SystemdDevice) =>
  device.run(["journalctl", "-u", "flotta-agent", "--no-pager", "-o", "cat"]);

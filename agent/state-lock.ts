/**
 * One agent per state dir. `agent.lock` holds the pid and the kernel's start time of the agent
 * that owns the dir (so a pid reused after a reboot is not mistaken for it). A second agent
 * finds the owner alive and refuses. A lock whose owner is gone means that run ended without
 * cleaning up (SIGKILL, power loss): the new run takes the dir over, removes the temp files a
 * killed write left, and is told so (`previous`), so that it lists its buckets again. A run
 * stopped by a signal while a multipart upload was under way leaves the lock marked
 * `interrupted`, so that the next start looks for that upload too.
 * A state dir that cannot be written (read-only, full) cannot hold a lock: the agent goes on
 * without one and says so; with no index writes possible, a second agent cannot tear anything.
 */
import { readFileSync } from "node:fs";
import { mkdir, open, readFile, readdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

export type StateLock =
  | {
      state: "locked";
      /** How the last run ended, when not cleanly: its leftovers must be looked for. */
      previous?: "crash" | "interrupted";
      /** Removes the lock; `interrupted` leaves a mark instead, for the next start. */
      release(interrupted?: boolean): Promise<void>;
    }
  | { state: "busy"; pid: number }
  | { state: "unlocked"; reason: string };

interface Owner {
  pid: number;
  start: string;
  /** Set when the owner stopped with a multipart upload cut short. */
  interrupted?: boolean;
}

/** The start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat). */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, "utf8")) as Owner;
    return typeof owner.pid === "number" ? owner : undefined;
  } catch {
    return undefined; // torn by a crash during its own write: nobody owns it
  }
}

/** Temp files of writes that a crash interrupted (`<name>.<hex>.tmp`, see atomic-file.ts). */
async function removeTempFiles(stateDir: string): Promise<void> {
  for (const name of await readdir(stateDir).catch(() => [] as string[]))
    if (/\.[0-9a-f]{12}\.tmp$/.test(name))
      await unlink(join(stateDir, name)).catch(() => undefined);
}

export async function lockStateDir(stateDir: string): Promise<StateLock> {
  const path = join(stateDir, "agent.lock");
  const me: Owner = { pid: process.pid, start: startTime(process.pid) ?? "" };
  let previous: "crash" | "interrupted" | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      const file = await open(path, "wx", 0o600);
      try {
        await file.writeFile(JSON.stringify(me));
      } finally {
        await file.close();
      }
      await removeTempFiles(stateDir);
      const release = async (interrupted = false) => {
        const owner = await readOwner(path);
        if (owner?.pid !== me.pid) return;
        if (interrupted) await writeFile(path, JSON.stringify({ ...me, interrupted }));
        else await unlink(path).catch(() => undefined);
      };
      return { state: "locked", previous, release };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") return { state: "unlocked", reason: (err as Error).message };
    }
    const owner = await readOwner(path);
    if (owner && owner.pid !== me.pid && startTime(owner.pid) === owner.start)
      return { state: "busy", pid: owner.pid };
    previous = owner?.interrupted ? "interrupted" : "crash";
    await unlink(path).catch(() => undefined);
  }
  return { state: "unlocked", reason: "another agent took the lock at the same moment" };
}

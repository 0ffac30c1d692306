/**
 * One agent per state dir. The lock is an abstract Unix socket named after the state dir's real
 * path: binding it is atomic, the kernel frees it when its holder dies (however it dies), and it
 * works whoever holds it and whether or not the holder's /proc entry is visible (the unit's
 * ProtectProc=invisible hides root's processes from the agent's user). It holds within one
 * network namespace: agents in other namespaces (containers) must not share a state dir.
 *
 * `agent.lock` in the state dir is only a record: the holder's pid (for the message a second
 * agent gets) and how the last run ended. Found at start, it means that run ended without
 * cleaning up (SIGKILL, power loss): the new run removes the temp files a killed write left and
 * is told so (`previous`), so that it lists its buckets again. A run stopped by a signal while a
 * multipart upload was under way leaves it marked `interrupted`, so that the next start looks
 * for that upload too.
 * A state dir that cannot be written (read-only, full) cannot hold the record: the agent goes on
 * with the socket alone and says so; with no index writes possible, nothing can tear.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, realpath, unlink } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-file";

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
  /** Set when the owner stopped with a multipart upload cut short. */
  interrupted?: boolean;
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, "utf8")) as Owner;
    return typeof owner.pid === "number" ? owner : { pid: 0 };
  } catch (err) {
    // Torn by a crash during its own write: a run that did not end cleanly.
    return (err as NodeJS.ErrnoException).code === "ENOENT" ? undefined : { pid: 0 };
  }
}

/** Temp files of writes that a crash interrupted (`<name>.<hex>.tmp`, see atomic-file.ts). */
async function removeTempFiles(stateDir: string): Promise<void> {
  for (const name of await readdir(stateDir).catch(() => [] as string[]))
    if (/\.[0-9a-f]{12}\.tmp$/.test(name))
      await unlink(join(stateDir, name)).catch(() => undefined);
}

/** Binds the abstract socket of `name`; false when another process holds it. */
function bind(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) =>
      err.code === "EADDRINUSE" ? resolve(undefined) : reject(err),
    );
    server.listen(`\0${name}`, () => {
      server.unref(); // the lock never keeps the process alive
      resolve(server);
    });
  });
}

export async function lockStateDir(stateDir: string): Promise<StateLock> {
  const path = join(stateDir, "agent.lock");
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    return { state: "unlocked", reason: (err as Error).message };
  }
  const where = await realpath(stateDir);
  const name = `flotta-agent/${createHash("sha256").update(where).digest("hex").slice(0, 32)}`;
  const server = await bind(name);
  if (!server) return { state: "busy", pid: (await readOwner(path))?.pid ?? 0 };
  const found = await readOwner(path);
  const previous = found ? (found.interrupted ? "interrupted" : "crash") : undefined;
  const me: Owner = { pid: process.pid };
  try {
    await writeFileAtomic(path, JSON.stringify(me));
  } catch (err) {
    // The socket stays bound: a second agent is still kept out.
    return { state: "unlocked", reason: (err as Error).message };
  }
  await removeTempFiles(stateDir);
  const release = async (interrupted = false) => {
    try {
      if (interrupted) await writeFileAtomic(path, JSON.stringify({ ...me, interrupted }));
      else await unlink(path).catch(() => undefined);
    } finally {
      server.close();
    }
  };
  return { state: "locked", previous, release };
}

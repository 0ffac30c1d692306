/**
 * Change events for the data paths, so that a new file is sent within a second instead of at the
 * next scan. One inotify watch per directory, set by the sync pass on each directory it lists
 * (Node's `recursive` option would put a watch and a stat on every file: 287 MB for 100,000).
 *
 * Each watch is set on the directory the confined walk opened, through its descriptor
 * (`/proc/self/fd/N`): never on wherever a path or a symlink in it leads now. An event only names
 * an entry; the pass then looks at it with the same confinement as a walk.
 *
 * Events can be lost: inotify's queue overflows silently under Node, a watch can miss what
 * happened before it was set, and the watch limit can be reached. So the agent keeps a full scan
 * as a safety net (at start, every few minutes, and whenever this watcher says one is needed),
 * and when watches cannot be set at all it falls back to a scan every interval and says why.
 */
import { watch, type FSWatcher } from "node:fs";
import type { PathBytes } from "./confined";
import type { ChangedEntry, Changes } from "./engine";
import type { WalkedDirectory } from "./walk";

export interface WatcherSettings {
  /** Directories watched at most; past it events are given up (the interval scan takes over). */
  maxWatches: number;
  /** Changed entries held between passes; past it they are dropped and a full scan is asked for. */
  maxPending: number;
}

interface Watch {
  watcher: FSWatcher;
  where: PathBytes;
  /** The directory's inode: a folder replaced at the same path needs a new watch. */
  ino: bigint;
  /** The full scan that last listed this directory. */
  scan: number;
}

export class ChangeWatcher {
  private readonly watches = new Map<string, Watch>();
  private pending: Changes = new Map();
  private readonly pendingKeys = new Set<string>();
  private scanNeeded = false;
  private scan = 0;
  /** Why events are not used, once they cannot be (the agent then scans every interval). */
  unavailable?: string;
  /** Called on each event (the agent's loop wakes up). */
  onChange?: () => void;

  constructor(private readonly settings: WatcherSettings) {}

  get watchCount(): number {
    return this.watches.size;
  }

  /** Whether data path `pathId`'s source folder is watched (one not made yet cannot be). */
  watchesSource(pathId: string): boolean {
    return this.watches.has(`${pathId}\0`);
  }

  /** Watches a directory a pass listed (if not watched already). */
  directory(pathId: string, dir: WalkedDirectory): void {
    if (this.unavailable) return;
    const id = `${pathId}\0${dir.rel}`;
    const known = this.watches.get(id);
    if (known?.where.equals(dir.where) && known.ino === dir.ino) {
      known.scan = this.scan;
      return;
    }
    known?.watcher.close();
    this.watches.delete(id);
    if (this.watches.size >= this.settings.maxWatches) {
      this.giveUp(
        `more than ${this.settings.maxWatches.toLocaleString("en")} directories to watch (--max-watches)`,
      );
      return;
    }
    const at = { where: dir.where, rel: dir.rel };
    let watcher: FSWatcher;
    try {
      watcher = watch(
        `/proc/self/fd/${dir.fd}`,
        { encoding: "buffer", persistent: false },
        (_event, name) => this.event(pathId, at, name as Buffer | null),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.giveUp(
        code === "ENOSPC"
          ? "the system's inotify watch limit was reached (fs.inotify.max_user_watches)"
          : `cannot watch a directory: ${(err as Error).message}`,
      );
      return;
    }
    // A watch whose directory went away errors or goes quiet; the next full scan drops it.
    watcher.on("error", () => this.drop(id));
    this.watches.set(id, { watcher, where: dir.where, ino: dir.ino, scan: this.scan });
  }

  /** A full scan begins: what it does not list again is gone, and its watch is dropped at the end. */
  scanStarted(): void {
    this.scan++;
    this.scanNeeded = false;
  }

  /** A full scan ended; `complete` when it listed every data path without problems. */
  scanFinished(complete: boolean): void {
    if (!complete) return;
    for (const [id, w] of this.watches) if (w.scan !== this.scan) this.drop(id);
  }

  /** True when events were lost (or are not used) and only a full scan can tell what changed. */
  get needsScan(): boolean {
    return this.scanNeeded;
  }

  /** The entries changed since the last call. */
  take(): Changes {
    const changes = this.pending;
    this.pending = new Map();
    this.pendingKeys.clear();
    return changes;
  }

  /** The entries changed in the data paths that `wanted` picks; the others stay pending. */
  takeWhere(wanted: (pathId: string) => boolean): Changes {
    const taken: Changes = new Map();
    for (const [id, list] of this.pending) {
      if (!wanted(id)) continue;
      taken.set(id, list);
      this.pending.delete(id);
      for (const { dir, name } of list)
        this.pendingKeys.delete(`${id}\0${dir.rel}\0${name.toString("latin1")}`);
    }
    return taken;
  }

  get hasPending(): boolean {
    return this.pendingKeys.size > 0;
  }

  close(): void {
    for (const id of [...this.watches.keys()]) this.drop(id);
  }

  private event(pathId: string, dir: ChangedEntry["dir"], name: Buffer | null): void {
    if (!name) {
      this.lost();
      return;
    }
    const key = `${pathId}\0${dir.rel}\0${name.toString("latin1")}`;
    if (!this.pendingKeys.has(key)) {
      if (this.pendingKeys.size >= this.settings.maxPending) {
        this.lost();
        return;
      }
      this.pendingKeys.add(key);
      const list = this.pending.get(pathId) ?? [];
      list.push({ dir, name });
      this.pending.set(pathId, list);
    }
    this.onChange?.();
  }

  /** Events were dropped: a full scan finds what they named. */
  private lost(): void {
    this.take();
    this.scanNeeded = true;
    this.onChange?.();
  }

  private giveUp(reason: string): void {
    this.unavailable = reason;
    this.close();
    this.lost();
  }

  private drop(id: string): void {
    this.watches.get(id)?.watcher.close();
    this.watches.delete(id);
  }
}

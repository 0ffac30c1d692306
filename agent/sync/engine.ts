/**
 * One sync pass to one destination, in the steps rclone's sync uses: list (only what the
 * index has not seen), walk, compare, transfer. The index is saved when the pass ends, and
 * whenever a multipart upload starts (so that a crash can be cleaned up or resumed: see
 * open-uploads.ts).
 */
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { DataPath, WorkloadPaths } from "../config/device-config";
import type { S3Connection } from "../s3/client";
import { openFile, readSmallFile } from "./confined";
import {
  bareEtag,
  decide,
  type Decision,
  guessPartSize,
  multipartPartCount,
  sameContent,
  type Content,
  type RemoteObject,
} from "./compare";
import { hashBuffer, hashFile, type FileHashes } from "./hash";
import { pathFilter, changedAtMs, stillQuieting, type PathFilter } from "./filter";
import type { DestinationIndex, IndexStore } from "./index-store";
import {
  objectAsRecorded,
  retainPaths,
  type RetentionContext,
  type RetentionReport,
} from "./retention";
import { census, type Waiting } from "./census";
import { OpenUploads } from "./open-uploads";
import { compressedObjectOf, sendCompressed } from "./compression";
import type { PathBytes } from "./confined";
import { MAX_KEY_BYTES, normalizeTarget, pathKeys, prefixedTarget, targetPrefix } from "./keys";
import { describeError, isDestinationError, type Logger } from "./errors";
import type { RateLimiter } from "./rate-limit";
import { Semaphore, TaskPool } from "./semaphore";
import { partSizeFor, putBuffer, transferFile, type Sent, type TransferOptions } from "./transfer";
import {
  lookAt,
  nameToKey,
  toLocalFile,
  walkFiles,
  type LocalFile,
  type WalkedDirectory,
  type WalkNotes,
  type WalkOptions,
  type WalkProblem,
} from "./walk";

export interface SyncSettings {
  volumesDir: string;
  /** Files sent at once. */
  concurrency: number;
  /** Of those, multipart uploads at once: each holds (queueSize + 1) x partSize of memory. */
  multipartConcurrency: number;
  partSize: number;
  queueSize: number;
  limiter: RateLimiter;
  /** Called as bytes go out (for a progress line). */
  onBytes?: (bytes: number) => void;
}

export interface WorkloadReport {
  filesSent: number;
  bytesSent: number;
  errors: number;
  lastError?: string;
}

export interface PassReport {
  filesSeen: number;
  filesSent: number;
  bytesSent: number;
  /** Bytes of resumed multipart uploads that the server already held (not sent again). */
  bytesReused: number;
  adopted: number;
  /** Same bytes, new times: not sent. */
  refreshed: number;
  /** Changed while being sent: sent again on a later pass. */
  changedDuringUpload: number;
  /** Changed within their path's quiet period: left for a later pass. */
  quiet: number;
  /** When the first of those is quiet long enough (ms since the epoch). */
  quietUntil?: number;
  /** Index entries dropped: their files are gone, or their workload is. */
  pruned: number;
  listedPrefixes: string[];
  failures: { key: string; error: string }[];
  walkProblems: WalkProblem[];
  /** Not uploaded on purpose: links out of the source folder, FIFOs, sockets, devices. */
  skipped: WalkProblem[];
  /** Set while the state dir cannot be written (full, read-only): uploads go on regardless. */
  stateProblem?: string;
  workloads: Record<string, WorkloadReport>;
  /** Set when the pass stopped early because the destination itself fails. */
  aborted?: string;
}

export class DestinationSync {
  private saving: Promise<void> = Promise.resolve();
  /** Files or pending uploads changed: save at the next chance. */
  private dirty = false;
  /** Only sync times changed: worth a save at most once a minute (an idle pass writes nothing). */
  private timesDirty = false;
  private lastSave = 0;
  private index!: DestinationIndex;
  /** The last run crashed: uploads it started may be unknown to the index (see listIfNew). */
  private afterCrash = false;
  /** A stop (signal) cut a multipart upload short: its id may never have reached the index. */
  interruptedMultipart = false;
  /** Its open multipart uploads, and whether cut-short ones are resumed (the device config). */
  readonly uploads: OpenUploads;
  /** Why the index cannot be saved right now (state dir full or read-only), if it cannot. */
  stateProblem?: string;
  private readonly client: S3Client;

  constructor(
    private readonly s3: S3Connection,
    private readonly destination: { endpoint: string; bucket: string },
    private readonly store: IndexStore,
    private readonly settings: SyncSettings,
    private readonly log: Logger,
  ) {
    this.client = s3.client;
    this.uploads = new OpenUploads(
      this.client,
      destination.bucket,
      () => this.index,
      () => (this.dirty = true),
      log,
    );
  }

  /**
   * Loads the index and aborts the multipart uploads a crash left behind that it will not resume. After a crash
   * (`afterCrash`) the index may lack the files sent in its last seconds: every prefix is listed
   * again, and objects that match their files are adopted instead of sent twice.
   */
  async open(afterCrash = false): Promise<void> {
    const loaded = await this.store.load(this.destination);
    this.index = loaded.index;
    if (loaded.state === "corrupt") {
      this.log.warn("index was unreadable; set aside, the bucket will be listed again", {
        setAsideAs: loaded.setAsideAs,
      });
    }
    if (loaded.state === "found" && loaded.tornRecords)
      this.log.warn("the index journal ended in a torn record (an unclean stop); cut there", {
        records: loaded.tornRecords,
      });
    this.afterCrash = afterCrash;
    if (afterCrash && loaded.state === "found" && this.index.listedPrefixes.length) {
      this.log.info(
        "after an unclean stop: listing the bucket again to adopt what the last run sent and abort what it left open",
      );
      this.index.listedPrefixes = [];
    }
    await this.uploads.abortUnresumable();
    await this.persist().catch(err => this.stateProblemFrom(err));
  }

  get state(): DestinationIndex {
    return this.index;
  }

  /** Saves the index if it changed; saves never overlap. */
  persist(): Promise<void> {
    // Chained on the previous save whatever its outcome: one failed save must not stop the rest.
    this.saving = this.saving
      .catch(() => undefined)
      .then(async () => {
        const timesDue = this.timesDirty && Date.now() - this.lastSave > 60_000;
        if (!this.dirty && !timesDue) return;
        this.dirty = false;
        this.timesDirty = false;
        this.lastSave = Date.now();
        try {
          await this.store.save(this.index);
          this.stateProblem = undefined;
        } catch (err) {
          this.dirty = true;
          throw err;
        }
      });
    return this.saving;
  }

  /** A failed save: uploads go on, the old index stays whole; logged when the reason is new. */
  private stateProblemFrom(err: unknown): void {
    const problem = `cannot save the index in the state dir: ${describeError(err)}`;
    if (problem !== this.stateProblem)
      this.log.warn("could not save the index; uploads go on, will try again", { error: problem });
    this.stateProblem = problem;
  }

  /** persist() from a callback that cannot wait: a failure is logged, and retried next save. */
  private persistInBackground(): void {
    this.persist().catch(err => this.stateProblemFrom(err));
  }

  private async listPrefix(prefix: string): Promise<Map<string, RemoteObject>> {
    const objects = new Map<string, RemoteObject>();
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.destination.bucket,
          Prefix: prefix,
          ContinuationToken: token,
          // Keys may hold characters XML 1.0 cannot carry (a workload names its files): asked
          // URL-encoded, as S3 documents; a server that ignores the ask answers them raw.
          EncodingType: "url",
        }),
      );
      const encoded = page.EncodingType === "url";
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        const key = encoded ? decodeURIComponent(object.Key.replace(/\+/g, " ")) : object.Key;
        objects.set(key, { size: object.Size ?? 0, etag: bareEtag(object.ETag ?? "") });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  /** True when the local file has the content of the remote object. */
  private async matchesRemote(
    file: LocalFile,
    hash: Hasher,
    remote: RemoteObject,
  ): Promise<Content | undefined> {
    const parts = multipartPartCount(remote.etag);
    if (parts === 0) {
      const { md5 } = await hash();
      return md5 === remote.etag ? { md5 } : undefined;
    }
    const mine = partSizeFor(file.size, this.settings.partSize);
    const ours = Math.ceil(file.size / mine) === parts ? mine : undefined;
    const partSize = ours ?? guessPartSize(file.size, parts);
    if (!partSize) return undefined;
    const hashes = await hash(partSize);
    // The object's ETag is not the file's MD5: kept, so retention can find the object as it is.
    const stored = { size: remote.size, etag: remote.etag };
    return hashes.multipartEtag === remote.etag ? { md5: hashes.md5, stored } : undefined;
  }

  /** True when the object at `key` says it is the gzip of this file (see compression.ts). */
  private async matchesCompressed(
    key: string,
    file: LocalFile,
    hash: Hasher,
    run: PassRun,
  ): Promise<Content | undefined> {
    const { md5 } = await hash();
    const stored = await compressedObjectOf(
      this.client,
      this.destination.bucket,
      key,
      { size: file.size, md5 },
      run.signal,
    );
    return stored && { md5, stored };
  }

  /**
   * One pass. Without `changes` it is a full scan: every file of every data path is compared with
   * the index, and entries for files gone from disk or of workloads no longer configured are
   * pruned. With `changes` only the entries named there (by change events) are looked at.
   */
  async pass(
    workloads: WorkloadPaths[],
    signal?: AbortSignal,
    options: PassOptions = {},
  ): Promise<PassReport> {
    const run: PassRun = {
      report: emptyReport(),
      pool: new TaskPool(this.settings.concurrency),
      multipart: new Semaphore(this.settings.multipartConcurrency),
      consecutiveDestinationErrors: 0,
      signal,
      seen: options.changes ? undefined : new KeySet(),
      scanned: [],
      paths: byPriority(workloads),
    };
    for (const workload of workloads)
      run.report.workloads[workload.name] = { filesSent: 0, bytesSent: 0, errors: 0 };
    for (const { workload, path } of run.paths) {
      if (stopped(run)) break;
      const changed = options.changes?.get(pathId(workload, path.source));
      if (options.changes && !changed) continue;
      await this.passPath(workload, path, changed, run, options);
    }
    // While the last uploads run, files of a higher priority named by change events go too.
    if (options.urgent)
      while (!(await run.pool.idleWithin(100)) && !stopped(run))
        await this.takeUrgent(run.pool.lowestRunning, run, options);
    await run.pool.drain();
    if (signal?.aborted) run.report.aborted ??= stopReason(signal);
    if (run.seen && !run.report.aborted) {
      this.prune(workloads, options.keyPrefix, run);
      if (this.uploads.policy.resume) await this.uploads.abortUnresumable();
    }
    this.finishPass(run.report);
    await this.persist().catch(err => this.stateProblemFrom(err));
    run.report.stateProblem = this.stateProblem;
    return run.report;
  }

  /**
   * One data path: a unit of failure. Whatever its tree, names or globs do, the problem is
   * reported for this path (its workload's lastError, the pass's walkProblems) and the other
   * paths go on; only an error of the destination itself (it is down, refuses the credentials)
   * ends the pass.
   */
  private async passPath(
    workload: string,
    path: DataPath,
    changed: ChangedEntry[] | undefined,
    run: PassRun,
    options: PassOptions,
  ): Promise<void> {
    const id = pathId(workload, path.source);
    const wr = run.report.workloads[workload];
    const source = normalizeTarget(path.source);
    try {
      const target: PathRun = {
        workload,
        sourcePath: source ? join(workload, source) : workload,
        ...pathKeys(options.keyPrefix, path),
        dataPath: path,
        priority: path.priority ?? 0,
        filter: pathFilter(path),
        wr,
        onDirectory: options.onDirectory && (dir => options.onDirectory!(id, dir)),
      };
      const remote = await this.listIfNew(target.prefix, run.report);
      await this.uploads.abortStraysOnce(target.prefix);
      if (changed) await this.passChanges(target, changed, remote, run, options);
      else await this.passScan(target, remote, run, options);
    } catch (err) {
      if (isDestinationError(err) || run.signal?.aborted) throw err;
      const error = `data path ${source || "."}: ${describeError(err)}`;
      run.report.walkProblems.push({ path: join(workload, source), error });
      wr.errors++;
      wr.lastError = error;
    }
  }

  /** A full scan of one data path; a path read without problems may have its gone files pruned. */
  private async passScan(
    target: PathRun,
    remote: Map<string, RemoteObject> | undefined,
    run: PassRun,
    options: PassOptions,
  ): Promise<void> {
    const notes: WalkNotes = { problems: [], skipped: [] };
    const files = walkFiles(this.settings.volumesDir, target.sourcePath, notes, target);
    await this.offer(target, files, remote, run, options);
    run.report.walkProblems.push(...notes.problems);
    run.report.skipped.push(...notes.skipped);
    if (!notes.problems.length && notes.reached) run.scanned.push(target.prefix);
  }

  /** Looks at the entries change events named; one that is gone takes its index entries along. */
  private async passChanges(
    target: PathRun,
    changed: ChangedEntry[],
    remote: Map<string, RemoteObject> | undefined,
    run: PassRun,
    options: PassOptions,
  ): Promise<void> {
    const notes: WalkNotes = { problems: [], skipped: [] };
    for (const entry of changed) {
      if (stopped(run)) break;
      const look = await lookAt(
        this.settings.volumesDir,
        target.sourcePath,
        entry.dir,
        entry.name,
        notes,
        target,
      );
      if (look.state === "found") await this.offer(target, look.files, remote, run, options);
      else {
        this.forget(target.prefix + relativeOf(entry));
        if (target.suffix) this.forget(target.prefix + relativeOf(entry) + target.suffix);
      }
    }
    run.report.walkProblems.push(...notes.problems);
    run.report.skipped.push(...notes.skipped);
  }

  /**
   * The producer: each file is compared with the index and, when it needs work, handed to the
   * pool, which takes it only when a slot is free (so the walk never runs ahead of the uploads).
   * A path with an order collects its files first, then hands them on sorted.
   */
  private async offer(
    target: PathRun,
    files: AsyncIterable<LocalFile[]>,
    remote: Map<string, RemoteObject> | undefined,
    run: PassRun,
    options: PassOptions,
  ): Promise<void> {
    const order = target.dataPath.order;
    const collected: FileItem[] = [];
    const handOn = async (item: FileItem) => {
      if (order) collected.push(item);
      else await this.submit(item, run, options);
    };
    await this.compare(target, files, remote, run, handOn);
    if (!order) return;
    collected.sort((a, b) => byChangeTime(a.file, b.file) * (order === "oldest-first" ? 1 : -1));
    for (const item of collected) {
      if (stopped(run)) return;
      await this.submit(item, run, options);
    }
  }

  /**
   * Hands a file to the pool, when a slot is free; first, files that change events name in data
   * paths of a higher priority than this one's (so they need not wait for this pass to end).
   */
  private async submit(item: FileItem, run: PassRun, options: PassOptions): Promise<void> {
    await this.takeUrgent(item.priority, run, options);
    await run.pool.submit(() => this.syncFile(item, run), item.priority);
  }

  /** Passes over the changes waiting in data paths of a higher priority than `priority`. */
  private async takeUrgent(priority: number, run: PassRun, options: PassOptions): Promise<void> {
    const urgent = options.urgent?.(priority);
    if (urgent?.size)
      for (const { workload, path } of run.paths) {
        const changed = urgent.get(pathId(workload, path.source));
        if (changed) await this.passPath(workload, path, changed, run, options);
      }
  }

  /** Compares each file with the index; hands on those that need work. */
  private async compare(
    target: PathRun,
    files: AsyncIterable<LocalFile[]>,
    remote: Map<string, RemoteObject> | undefined,
    run: PassRun,
    handOn: (item: FileItem) => Promise<void>,
  ): Promise<void> {
    const index = this.index.files;
    const { filter } = target;
    let slice = performance.now();
    for await (const batch of files) {
      for (const file of batch) {
        // A long stretch of work on one batch gives the event loop a turn (signals, other
        // paths' uploads, the status): never more than a few milliseconds at a time.
        if (performance.now() - slice > YIELD_AFTER_MS) {
          await new Promise(resolve => setImmediate(resolve));
          slice = performance.now();
        }
        const key = target.prefix + file.relativePath + target.suffix;
        if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
          // Globs are linear in the path, but a path past PATH_MAX is not worth their time.
          const unwanted = file.relativePath.length <= 4096 && !filter.wanted(file.relativePath);
          if (!unwanted) this.keyTooLong(key, target.wr, run.report);
          continue;
        }
        if (!filter.wanted(file.relativePath)) continue;
        run.report.filesSeen++;
        run.seen?.add(key);
        if (index.hasStat(key, file)) continue; // untouched: the common case, decided cheaply
        if (this.quieting(file, filter, run.report)) continue;
        const compressed = !!target.suffix;
        const decision = decide(file, index.get(key), remote?.get(key), compressed);
        if (decision.action === "skip") continue;
        if (stopped(run)) return;
        const { workload, wr, priority } = target;
        await handOn({ key, file, decision, workload, wr, compressed, priority });
      }
    }
  }

  /** A key S3 would refuse: a failure of that file, said before any glob looks at it. */
  private keyTooLong(key: string, wr: WorkloadReport, report: PassReport): void {
    const error = `the object key is longer than ${MAX_KEY_BYTES.toLocaleString("en")} bytes, S3's limit: not uploaded`;
    report.failures.push({ key, error });
    wr.errors++;
    wr.lastError = error;
  }

  /** True (and counted) for a file changed too recently for its path's quiet period. */
  private quieting(file: LocalFile, filter: PathFilter, report: PassReport): boolean {
    if (!stillQuieting(file.ctimeNs, filter.quietMs, Date.now())) return false;
    report.quiet++;
    const due = changedAtMs(file.ctimeNs) + filter.quietMs;
    report.quietUntil = Math.min(report.quietUntil ?? Infinity, due);
    return true;
  }

  /** Drops the entry of a file that is gone, or of every file below a folder that is gone. */
  private forget(key: string): void {
    this.dirty = true;
    // A file's own entry: nothing can lie below it, so no look through the whole index.
    if (this.index.files.delete(key)) return;
    const below = `${key}/`;
    for (const other of this.index.files.keys())
      if (other.startsWith(below)) this.index.files.delete(other);
  }

  /**
   * After a full scan: entries of files that are gone from scanned paths, and of workloads that
   * are no longer configured, are dropped (the objects stay in the bucket). A removed workload's
   * prefixes are forgotten too, so that if it comes back its objects are adopted, not sent again.
   */
  private prune(workloads: WorkloadPaths[], keyPrefix: string | undefined, run: PassRun): void {
    const configured = new Set(workloads.map(w => w.name));
    const prefixes = new Set(
      workloads.flatMap(w => w.paths.map(p => targetPrefix(prefixedTarget(keyPrefix, p.target)))),
    );
    const all = [...prefixes];
    const files = this.index.files;
    let pruned = 0;
    for (const [key, workload] of files.keysWithWorkload()) {
      const gone =
        !configured.has(workload) ||
        !all.some(prefix => key.startsWith(prefix)) || // its target or key prefix changed
        (!run.seen!.has(key) && run.scanned.some(prefix => key.startsWith(prefix)));
      if (gone && files.delete(key)) pruned++;
    }
    for (const name of Object.keys(this.index.workloads))
      if (!configured.has(name)) delete this.index.workloads[name];
    const listed = this.index.listedPrefixes.filter(p => prefixes.has(p));
    if (listed.length !== this.index.listedPrefixes.length) this.index.listedPrefixes = listed;
    run.report.pruned = pruned;
    if (pruned) this.dirty = true;
  }

  /** First time this destination sees this prefix: list it, to adopt what is already there. */
  private async listIfNew(
    prefix: string,
    report: PassReport,
  ): Promise<Map<string, RemoteObject> | undefined> {
    if (this.index.listedPrefixes.includes(prefix)) return undefined;
    if (this.afterCrash) await this.uploads.abortStrays(prefix);
    const remote = await this.listPrefix(prefix);
    report.listedPrefixes.push(prefix);
    return remote;
  }

  /** Records what a file is now (its content fingerprint and stat) under its key. */
  private record(item: FileItem, content: Content, stat: LocalFile, sent: boolean): void {
    const previous = this.index.files.get(item.key);
    this.index.files.set(item.key, {
      workload: item.workload,
      size: stat.size,
      mtimeNs: stat.mtimeNs,
      ctimeNs: stat.ctimeNs,
      ino: stat.ino,
      ...content,
      sentAt: sent || !previous ? new Date().toISOString() : previous.sentAt,
    });
    this.dirty = true;
    // A long pass saves as it goes; a crash is recovered by listing again (open()).
    if (Date.now() - this.lastSave > 10_000) this.persistInBackground();
  }

  /** One file: open it confined, check it if the decision says so, send it if it differs. */
  private async syncFile(item: FileItem, run: PassRun): Promise<void> {
    if (stopped(run)) return;
    const { report } = run;
    try {
      if (item.compressed) await this.syncStreamed(item, run);
      else if (item.file.size > SMALL_FILE || !(await this.syncSmall(item, run)))
        await this.syncStreamed(item, run);
      run.consecutiveDestinationErrors = 0;
    } catch (err) {
      if (run.signal?.aborted) {
        if (item.file.size > this.settings.partSize) this.interruptedMultipart = true;
        return;
      }
      const error = describeError(err);
      report.failures.push({ key: item.key, error });
      item.wr.errors++;
      item.wr.lastError = error;
      if (isDestinationError(err) && ++run.consecutiveDestinationErrors >= 3) {
        report.aborted ??= error;
      }
    }
  }

  /**
   * A small file: read whole (readSmallFile: confined, synchronous), checked from memory, sent
   * from memory. False when it has grown past SMALL_FILE meanwhile (syncStreamed takes it).
   */
  private async syncSmall(item: FileItem, run: PassRun): Promise<boolean> {
    const read = readSmallFile(item.file.path, item.file.root, SMALL_FILE);
    if (read.state === "large") return false;
    if (read.state === "refused") {
      run.report.skipped.push({ path: item.file.relativePath, error: read.reason });
      return true;
    }
    if (read.state === "gone") return true;
    const { data, stable } = read.value;
    const { path, root, relativePath } = item.file;
    const file = toLocalFile(path, root, relativePath, read.value.stat);
    const md5 = createHash("md5").update(data).digest();
    const hash: Hasher = async partSize =>
      partSize ? hashBuffer(data, partSize) : { md5: md5.toString("hex") };
    if (await this.alreadyThere(item, file, hash, run)) return true;
    await this.send(item, run, async () => {
      await putBuffer(item.key, data, md5, this.transferOptions(run, item));
      const content = { md5: md5.toString("hex") };
      return { state: stable ? "sent" : "changed", file, content };
    });
    return true;
  }

  /** A larger file: opened confined, hashed and sent by streaming from its descriptor. */
  private async syncStreamed(item: FileItem, run: PassRun): Promise<void> {
    const opened = await openFile(item.file.path, item.file.root);
    if (opened.state === "refused") {
      run.report.skipped.push({ path: item.file.relativePath, error: opened.reason });
      return;
    }
    if (opened.state === "gone") return;
    const { handle, stat } = opened.value;
    try {
      const { path, root, relativePath } = item.file;
      const file = toLocalFile(path, root, relativePath, stat);
      const hash: Hasher = partSize => hashFile(handle, file.size, partSize, run.signal);
      if (await this.alreadyThere(item, file, hash, run)) return;
      if (item.compressed)
        return await this.send(item, run, () =>
          sendCompressed(item.key, file, handle, this.transferOptions(run, item, file)),
        );
      const large = file.size > this.settings.partSize;
      const transfer = async () => {
        const partSize = partSizeFor(file.size, this.settings.partSize);
        const resume = large ? await this.uploads.resumeFor(item.key, file, partSize) : undefined;
        return transferFile(item.key, file, handle, {
          ...this.transferOptions(run, item, file),
          resume,
        });
      };
      await this.send(item, run, () => (large ? run.multipart.run(transfer) : transfer()));
    } finally {
      await handle.close();
    }
  }

  /** For a touched file or one found in the bucket: true when its bytes are what is recorded. */
  private async alreadyThere(
    item: FileItem,
    file: LocalFile,
    hash: Hasher,
    run: PassRun,
  ): Promise<boolean> {
    const { decision } = item;
    if (file.size !== item.file.size) return false; // changed since the walk: send it
    if (decision.action === "verify-local") {
      const hashes = await hash(decision.entry.partSize);
      if (!sameContent(decision.entry, hashes)) return false;
      this.record(item, { md5: hashes.md5, stored: decision.entry.stored }, file, false);
      run.report.refreshed++;
      return true;
    }
    if (decision.action === "verify-remote") {
      const match = item.compressed
        ? await this.matchesCompressed(item.key, file, hash, run)
        : await this.matchesRemote(file, hash, decision.remote);
      if (!match) return false;
      this.record(item, match, file, false);
      run.report.adopted++;
      return true;
    }
    return false;
  }

  private transferOptions(run: PassRun, item: FileItem, file?: LocalFile): TransferOptions {
    return {
      priority: item.priority,
      client: this.client,
      putObject: this.s3.putObject,
      uploadPart: this.s3.uploadPart,
      bucket: this.destination.bucket,
      partSize: this.settings.partSize,
      queueSize: this.settings.queueSize,
      limiter: this.settings.limiter,
      signal: run.signal,
      onBytes: this.settings.onBytes,
      keepOnFailure: this.uploads.policy.resume,
      onMultipartStart: (k, uploadId, partSize) => {
        this.uploads.started(k, uploadId, partSize, file);
        this.persistInBackground();
      },
    };
  }

  /** Runs one transfer and records what it left in the bucket. */
  private async send(item: FileItem, run: PassRun, transfer: () => Promise<Sent>): Promise<void> {
    const { key, wr } = item;
    this.uploads.inFlight.add(key);
    const result = await transfer().finally(() => this.uploads.inFlight.delete(key));
    this.uploads.forget(key);
    const reused = result.reusedBytes ?? 0;
    run.report.bytesSent += result.file.size - reused;
    run.report.bytesReused += reused;
    wr.bytesSent += result.file.size - reused;
    if (result.state === "changed") {
      run.report.changedDuringUpload++;
      return;
    }
    this.record(item, result.content, result.file, true);
    run.report.filesSent++;
    wr.filesSent++;
  }

  /**
   * Retention, after a pass (retention.ts): with mode "measure" (the pass could not reach the
   * bucket) nothing is deleted; the sizes still tell whether a capped folder is over its cap.
   */
  async retain(
    workloads: WorkloadPaths[],
    keyPrefix: string | undefined,
    mode: RetentionContext["mode"],
  ): Promise<RetentionReport> {
    const report = await retainPaths(workloads, keyPrefix, {
      volumesDir: this.settings.volumesDir,
      index: this.index.files,
      confirm: (key, entry) => objectAsRecorded(this.client, this.destination.bucket, key, entry),
      deleted: () => (this.dirty = true),
      now: Date.now(),
      mode,
    });
    if (report.deletions.length) await this.persist().catch(err => this.stateProblemFrom(err));
    return report;
  }

  /** The files waiting now (census.ts). */
  waiting(workloads: WorkloadPaths[], keyPrefix: string | undefined): Promise<Waiting> {
    return census(this.settings.volumesDir, workloads, keyPrefix, this.index.files);
  }

  /** Listed prefixes and per-workload times, once the pass is over. */
  private finishPass(report: PassReport): void {
    const index = this.index;
    if (!report.aborted) {
      for (const prefix of report.listedPrefixes)
        if (!index.listedPrefixes.includes(prefix)) index.listedPrefixes.push(prefix);
      if (report.listedPrefixes.length) this.dirty = true;
    }
    const now = new Date().toISOString();
    for (const [name, wr] of Object.entries(report.workloads)) {
      const state = (index.workloads[name] ??= {});
      if (wr.errors === 0 && !report.aborted) state.lastSyncTime = now;
      if (wr.filesSent > 0) state.lastUploadTime = now;
      state.lastError = wr.lastError ?? (report.aborted ? report.aborted : undefined);
      this.timesDirty = true;
    }
  }
}

/**
 * Files up to this size are read whole with synchronous calls (see readSmallFile): they block for
 * microseconds from the page cache, a few milliseconds from cold flash.
 */
const SMALL_FILE = 256 * 1024;

/** The hashes of the file being looked at; with a part size, its multipart ETag too. */
type Hasher = (partSize?: number) => Promise<FileHashes>;

/** The longest the producer works before it lets other work run (see offer). */
const YIELD_AFTER_MS = 10;

interface FileItem {
  /** Gzip the file into its object (compression.ts). */
  compressed: boolean;
  /** Its data path's. */
  priority: number;
  key: string;
  file: LocalFile;
  decision: Exclude<Decision, { action: "skip" }>;
  workload: string;
  wr: WorkloadReport;
}

interface PassRun {
  report: PassReport;
  pool: TaskPool;
  multipart: Semaphore;
  consecutiveDestinationErrors: number;
  signal?: AbortSignal;
  /** Full scans: the keys seen, and the prefixes scanned whole (see prune). */
  seen?: KeySet;
  scanned: string[];
  /** Every data path, highest priority first. */
  paths: { workload: string; path: DataPath }[];
}

/** One data path within a pass. */
interface PathRun extends WalkOptions {
  workload: string;
  /** Its include/exclude globs and quiet period. */
  filter: PathFilter;
  /** `<workload>/<source>`, below the volumes dir. */
  sourcePath: string;
  /** Object keys of this path start with it. */
  prefix: string;
  /** And end with it: `.gz` when compressed, else empty. */
  suffix: string;
  /** The data path as configured (compression, retention, priority, order). */
  dataPath: DataPath;
  priority: number;
  wr: WorkloadReport;
}

/** An entry a change event named: `name` in the directory `dir`. */
export interface ChangedEntry {
  dir: { where: PathBytes; rel: string };
  name: PathBytes;
}

/** Changed entries by data path (see pathId). */
export type Changes = Map<string, ChangedEntry[]>;

/** Names one data path of one workload. */
export const pathId = (workload: string, source: string) => `${workload}\0${source}`;

const relativeOf = (entry: ChangedEntry) =>
  entry.dir.rel ? `${entry.dir.rel}/${nameToKey(entry.name)}` : nameToKey(entry.name);

export interface PassOptions {
  /** Put before every key (the config's keyPrefix). */
  keyPrefix?: string;
  /** Look only at these entries (a pass after change events). */
  changes?: Changes;
  /** Called for each directory a pass lists, with its data path's id. */
  onDirectory?: (pathId: string, dir: WalkedDirectory) => void;
  /** Changes waiting in data paths of a higher priority than `priority` (taken: handled now). */
  urgent?: (priority: number) => Changes | undefined;
}

/** Each data path of each workload, highest priority first (else in config order). */
export function byPriority(workloads: WorkloadPaths[]): { workload: string; path: DataPath }[] {
  const all = workloads.flatMap(w => w.paths.map(path => ({ workload: w.name, path })));
  return all.sort((a, b) => (b.path.priority ?? 0) - (a.path.priority ?? 0));
}

/** Older change (ctime, as a base-36 count of nanoseconds) first. */
function byChangeTime(a: LocalFile, b: LocalFile): number {
  const x = a.mtimeNs;
  const y = b.mtimeNs;
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

/**
 * The keys a full scan saw, as 31-bit hashes (a million keys in about 20 MB, not 100 MB). A
 * collision only keeps a gone file's entry, never drops a present one.
 */
class KeySet {
  private readonly hashes = new Set<number>();
  add(key: string): void {
    this.hashes.add(hashKey(key));
  }
  has(key: string): boolean {
    return this.hashes.has(hashKey(key));
  }
}

/** FNV-1a over the UTF-16 code units, folded to a small integer. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h & 0x7fffffff;
}

/** Why a pass was stopped: a hold of the bandwidth timetable says so; anything else is a stop. */
const stopReason = (signal: AbortSignal) =>
  (signal.reason as Error)?.name === "BandwidthHold" ? (signal.reason as Error).message : "stopped";

const stopped = (run: PassRun) => !!run.report.aborted || !!run.signal?.aborted;

/** A pass that has done nothing yet. */
export function emptyReport(): PassReport {
  return {
    filesSeen: 0,
    filesSent: 0,
    bytesSent: 0,
    bytesReused: 0,
    adopted: 0,
    refreshed: 0,
    changedDuringUpload: 0,
    quiet: 0,
    pruned: 0,
    listedPrefixes: [],
    failures: [],
    walkProblems: [],
    skipped: [],
    workloads: {},
  };
}

/**
 * The agent's loop: keep the config current, keep one destination open for the config's
 * storage, run a sync pass every interval (and at once when the config changes), report.
 *
 * A storage switch opens the new destination with its own index: an empty bucket gets every
 * file, a bucket that already holds them gets none. Failures never end the loop: a pass whose
 * destination fails backs off (doubling, up to 5 minutes, with jitter) and tries again.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import type { DeviceConfig, Storage } from "./config/device-config";
import type { ConfigHolder } from "./config/sources";
import type { DeviceApi, DeviceRef } from "./kube/client";
import { registerSecret } from "./log";
import { writeTextfile, type AgentMetrics } from "./metrics";
import { connectS3 } from "./s3/client";
import { buildDataUploadStatus } from "./status";
import {
  pathId,
  DestinationSync,
  type Changes,
  type PassReport,
  type SyncSettings,
} from "./sync/engine";
import type { RetentionReport } from "./sync/retention";
import { DeletionLog } from "./sync/deletion-log";
import { FailureLog } from "./sync/failure-log";
import { BandwidthKeeper, type WindowState } from "./bandwidth";
import { StallWatch } from "./stall";
import { describeError, type Logger } from "./sync/errors";
import { IndexStore } from "./sync/index-store";
import { ChangeWatcher } from "./sync/watcher";

export interface AgentSettings extends SyncSettings {
  stateDir: string;
  /** Overrides the config's syncIntervalSeconds when set. */
  intervalSeconds?: number;
  /** `run` follows file events (inotify); a full scan every rescanSeconds is the safety net. */
  events: boolean;
  rescanSeconds: number;
  maxWatches: number;
  /** After the first event, wait this long for more before a pass (a burst of writes is one pass). */
  eventDelayMs: number;
  configPollSeconds: number;
  /** An idle device's status (only lastSyncTime moves) is patched this often. */
  statusHeartbeatSeconds: number;
  /** The last run did not stop cleanly (see state-lock.ts): destinations list their buckets again. */
  afterCrash?: boolean;
  /** Counted after each pass (served by --metrics-address); written to metricsTextfile if set. */
  metrics?: AgentMetrics;
  metricsTextfile?: string;
}

export interface Reporting {
  api: DeviceApi;
  device: DeviceRef;
  /** Renews the device's token when it is due (before each pass). */
  tokenRenewal?: { renewIfDue(): Promise<void> };
}

export type PassOutcome =
  | { state: "synced"; report: PassReport }
  | { state: "waiting"; reason: string }
  /** The bandwidth timetable holds uploads until `until` (undefined: it never opens). */
  | { state: "held"; reason: string; until?: number }
  | { state: "failed"; reason: string };

const storageIdentity = (s: Storage) =>
  JSON.stringify([
    s.endpoint,
    s.bucket,
    s.region,
    s.accessKeyId,
    s.secretAccessKey,
    s.caBundle,
    s.forcePathStyle,
  ]);

export class Agent {
  private open?: { identity: string; client: S3Client; sync: DestinationSync };
  private lastReport?: { at: number; text: string };
  private lastSkipped = "[]";
  private lastProblems = "[]";
  private readonly store: IndexStore;
  /** Set while `run` follows file events. */
  private watcher?: ChangeWatcher;
  /** The last status patch failed: try again after the interval, even with nothing to send. */
  private reportFailed = false;
  /** What retention did after the last pass (undefined: no data path has retention). */
  private retention?: RetentionReport;
  private readonly deletionLog: DeletionLog;
  private readonly failureLog: FailureLog;
  /** The bandwidth timetable, applied to the rate limiter; what it said at the last pass. */
  private readonly bandwidth: BandwidthKeeper;
  private window?: WindowState;
  private readonly stall: StallWatch;
  /** What the last status was built from (a census or a hold reports again with them). */
  private lastPass?: { report?: PassReport; problem?: string };
  /** The stall last logged. */
  private lastStalled: string | null = null;

  constructor(
    private readonly settings: AgentSettings,
    private readonly config: ConfigHolder,
    private readonly log: Logger,
    private readonly reporting?: Reporting,
  ) {
    this.store = new IndexStore(settings.stateDir);
    this.deletionLog = new DeletionLog(settings.stateDir);
    this.failureLog = new FailureLog(settings.stateDir);
    this.bandwidth = new BandwidthKeeper(settings.limiter);
    this.stall = new StallWatch(
      () => this.config.current,
      config => this.census(config),
      () => this.stallChanged(),
    );
  }

  /** Reads the config source; logs what changed or why a new config was refused. */
  async refreshConfig(): Promise<boolean> {
    const update = await this.config.refresh();
    if (update.kind === "refused") {
      if (!update.repeated) {
        const keeping = this.config.current
          ? "keeping the last good config"
          : "waiting for a valid config";
        this.log.warn(`config not usable: ${keeping}`, { reason: update.reason });
      }
      return false;
    }
    if (update.kind === "none") return false;
    const { storage, workloads } = update.config;
    registerSecret(storage?.accessKeyId, storage?.secretAccessKey);
    this.log.info("config loaded", {
      storage: storage
        ? { kind: storage.kind, endpoint: storage.endpoint, bucket: storage.bucket }
        : null,
      workloads: workloads.map(w => ({ name: w.name, paths: w.paths.length })),
    });
    return true;
  }

  private async destinationFor(
    config: DeviceConfig & { storage: Storage },
  ): Promise<DestinationSync> {
    const { storage } = config;
    const identity = storageIdentity(storage);
    const policy = {
      resume: config.resumeUploads,
      abortAfterMs: config.abortUploadsAfterHours * 3_600_000,
    };
    if (this.open?.identity === identity) {
      this.open.sync.uploads.policy = policy;
      return this.open.sync;
    }
    this.open?.client.destroy();
    this.open = undefined;
    const connection = connectS3(storage, {
      maxSockets: this.settings.concurrency * (this.settings.queueSize + 1),
    });
    const { client } = connection;
    const sync = new DestinationSync(
      connection,
      { endpoint: storage.endpoint, bucket: storage.bucket },
      this.store,
      this.settings,
      this.log,
    );
    sync.uploads.policy = policy;
    try {
      await sync.open(this.settings.afterCrash);
    } catch (err) {
      client.destroy();
      throw err;
    }
    this.open = { identity, client, sync };
    this.log.info("destination opened", { endpoint: storage.endpoint, bucket: storage.bucket });
    return sync;
  }

  intervalSeconds(config?: DeviceConfig): number {
    return this.settings.intervalSeconds ?? config?.syncIntervalSeconds ?? 15;
  }

  /**
   * One pass with the current config: a full scan, or with `changes` a look at what change events
   * named. `signal` stops it early (in-flight uploads are aborted).
   */
  async syncOnce(signal?: AbortSignal, changes?: Changes): Promise<PassOutcome> {
    await this.reporting?.tokenRenewal?.renewIfDue();
    await this.refreshConfig();
    const config = this.config.current;
    if (!config)
      return {
        state: "waiting",
        reason: `no valid device config yet: ${this.config.problem ?? "none read"}`,
      };
    const { storage } = config;
    if (!storage) return { state: "waiting", reason: "the device config has no storage" };
    this.window = this.bandwidth.apply(config);
    if (this.window.held) return this.held(this.window);
    let sync: DestinationSync;
    try {
      sync = await this.destinationFor({ ...config, storage });
    } catch (err) {
      const reason = `cannot open ${storage.endpoint}/${storage.bucket}: ${describeError(err)}`;
      await this.report(undefined, undefined, reason);
      return { state: "failed", reason };
    }
    let report: PassReport;
    const watcher = this.watcher;
    const started = performance.now();
    const pass = this.bandwidth.during(config, signal);
    try {
      if (!changes) watcher?.scanStarted();
      report = await sync.pass(config.workloads, pass.signal, {
        keyPrefix: config.keyPrefix,
        changes,
        onDirectory: watcher && ((id, dir) => watcher.directory(id, dir)),
        urgent: watcher && urgentChanges(watcher, config),
      });
      if (!changes) watcher?.scanFinished(!report.aborted && !report.walkProblems.length);
    } catch (err) {
      const reason = `sync pass failed: ${describeError(err)}`;
      await this.retainAfter(sync, config, false);
      await this.report(sync, undefined, reason);
      return { state: "failed", reason };
    } finally {
      pass.dispose();
    }
    if (this.bandwidth.heldDuringPass && !signal?.aborted) {
      this.window = this.bandwidth.apply(config);
      if (this.window.held) return this.held(this.window, sync);
    }
    await this.retainAfter(sync, config, !report.aborted && !signal?.aborted);
    await this.logPass(report, storage.bucket, changes ? "events" : "scan");
    await this.report(sync, report);
    await this.count(sync, report, changes ? "events" : "scan", started);
    if (report.aborted) return { state: "failed", reason: report.aborted };
    return { state: "synced", report };
  }

  /** A census changed what status says about waiting files: logged when a stall begins or ends. */
  private async stallChanged(): Promise<void> {
    const { stalled } = this.stall.fields;
    if (stalled !== this.lastStalled) {
      if (stalled) this.log.warn("uploads stalled", { stalled });
      else if (this.lastStalled) this.log.info("uploads flow again");
      this.lastStalled = stalled;
    }
    await this.report(this.open?.sync, this.lastPass?.report, this.lastPass?.problem);
  }

  /** The files waiting, counted by the stall watch; the metric follows. */
  private async census(config: DeviceConfig) {
    const sync = this.open?.sync;
    if (!sync) return undefined;
    const waiting = await sync.waiting(config.workloads, config.keyPrefix);
    const age = waiting.oldestChangeMs === undefined ? 0 : Date.now() - waiting.oldestChangeMs;
    this.settings.metrics?.set("flotta_agent_oldest_waiting_seconds", {}, Math.round(age / 1000));
    await this.writeTextfile();
    return waiting;
  }

  /** What a pass did, in the log; its failures in the failure record (for explain). */
  private async logPass(report: PassReport, bucket: string, kind: "scan" | "events") {
    this.logProblems(report);
    await this.failureLog
      .update(report.failures)
      .catch(err => this.log.warn("cannot record failures", { error: describeError(err) }));
    for (const failure of report.failures.slice(0, 20))
      this.log.warn("upload failed; will retry", failure);
    const level =
      report.filesSent || report.failures.length || report.adopted || report.pruned
        ? "info"
        : "debug";
    this.log[level]("sync pass done", {
      bucket,
      kind,
      seen: report.filesSeen,
      sent: report.filesSent,
      bytes: report.bytesSent,
      ...(report.bytesReused ? { resumedBytes: report.bytesReused } : {}),
      ...(report.quiet ? { quiet: report.quiet } : {}),
      adopted: report.adopted,
      unchangedTouched: report.refreshed,
      changedDuringUpload: report.changedDuringUpload,
      failed: report.failures.length,
      skipped: report.skipped.length,
      pruned: report.pruned,
      listed: report.listedPrefixes,
    });
  }

  /** Uploads wait for the timetable: said in status (and the caller waits). */
  private async held(
    window: Extract<WindowState, { held: true }>,
    sync?: DestinationSync,
  ): Promise<PassOutcome> {
    await this.report(sync ?? this.open?.sync, this.lastPass?.report, this.lastPass?.problem);
    return { state: "held", reason: window.description, until: window.until };
  }

  /**
   * Retention after a pass (retention.ts): deletes confirmed files when the pass reached the
   * bucket, else only measures the capped folders (for DiskPressure). Never throws: a problem is
   * logged and the files stay.
   */
  private async retainAfter(
    sync: DestinationSync,
    config: DeviceConfig,
    reachable: boolean,
  ): Promise<void> {
    if (!config.workloads.some(w => w.paths.some(p => p.retention))) {
      this.retention = undefined;
      return;
    }
    try {
      const kept = await sync.retain(
        config.workloads,
        config.keyPrefix,
        reachable ? "delete" : "measure",
      );
      const was = this.conditionFields().diskPressure;
      this.retention = kept;
      this.settings.metrics?.observeRetention(kept);
      const pressure = this.conditionFields().diskPressure;
      if (pressure && pressure !== was) this.log.warn("disk pressure", { pressure });
      if (was && !pressure) this.log.info("disk pressure is over");
      if (kept.problem)
        this.log.warn("retention stopped: files are kept", { reason: kept.problem });
      if (!kept.deletions.length) return;
      this.log.info("retention deleted local files confirmed in the bucket", {
        files: kept.deletions.length,
        bytes: kept.deletions.reduce((n, d) => n + d.size, 0),
      });
      await this.deletionLog.add(kept.deletions);
    } catch (err) {
      this.log.warn("retention failed: files are kept", { error: describeError(err) });
    }
  }

  /** The pass in the metrics, and the metrics in the textfile when one is asked for. */
  private async count(
    sync: DestinationSync,
    report: PassReport,
    kind: "scan" | "events",
    started: number,
  ): Promise<void> {
    const { metrics } = this.settings;
    if (!metrics) return;
    metrics.observePass(report, kind, (performance.now() - started) / 1000, sync.state);
    await this.writeTextfile();
  }

  /** The metrics into the textfile, when one is asked for; a failure is logged. */
  private async writeTextfile(): Promise<void> {
    const { metrics, metricsTextfile } = this.settings;
    if (!metrics || !metricsTextfile) return;
    await writeTextfile(metrics, metricsTextfile).catch(err =>
      this.log.warn("cannot write the metrics textfile", {
        file: metricsTextfile,
        error: describeError(err),
      }),
    );
  }

  /**
   * What could not be read, and entries not uploaded on purpose: each list logged (by name, at
   * most 20 entries) when it changes, not every pass.
   */
  private logProblems(report: PassReport): void {
    const problems = JSON.stringify(report.walkProblems);
    if (problems !== this.lastProblems) {
      this.lastProblems = problems;
      for (const problem of report.walkProblems.slice(0, 20))
        this.log.warn("cannot read local path", { ...problem });
    }
    const skipped = JSON.stringify(report.skipped);
    if (skipped === this.lastSkipped) return;
    this.lastSkipped = skipped;
    for (const entry of report.skipped.slice(0, 20)) this.log.info("not uploaded", { ...entry });
  }

  /**
   * Patches the device status when it says something new; when only lastSyncTime moved, every
   * statusHeartbeatSeconds (an idle fleet then makes almost no API requests).
   */
  private async report(
    sync: DestinationSync | undefined,
    report: PassReport | undefined,
    problem?: string,
  ): Promise<void> {
    this.lastPass = { report, problem };
    if (!this.reporting) return;
    const index = sync?.state;
    const status = {
      ...(index ? buildDataUploadStatus(index, report, problem) : { lastError: problem }),
      ...this.conditionFields(),
      ...(this.changeDetection ? { changeDetection: this.changeDetection } : {}),
    };
    const text = JSON.stringify({ ...status, lastSyncTime: undefined });
    if (
      this.lastReport &&
      this.lastReport.text === text &&
      Date.now() - this.lastReport.at < this.settings.statusHeartbeatSeconds * 1000
    )
      return;
    try {
      await this.reporting.api.patchDeviceStatus(this.reporting.device, { dataUpload: status });
      this.lastReport = { at: Date.now(), text };
      this.reportFailed = false;
    } catch (err) {
      this.reportFailed = true;
      this.log.warn("cannot report status", { error: (err as Error).message });
    }
  }

  /** Status fields of retention, the timetable and stalls; null clears one that is over. */
  private conditionFields(): Record<string, string | null> {
    const pressure = this.retention?.paths
      .map(p => p.pressure)
      .filter(p => !!p)
      .join("; ");
    return {
      diskPressure: pressure || null,
      bandwidth: this.window?.description ?? null,
      ...this.stall.fields,
    };
  }

  /** How `run` notices new files, for status: "events", or "interval" and why. */
  private get changeDetection(): string | undefined {
    if (!this.watcher) return this.settings.events ? undefined : "interval (events turned off)";
    return this.watcher.unavailable ? `interval (${this.watcher.unavailable})` : "events";
  }

  /**
   * Runs until `signal` aborts. With events, a pass looks only at what changed, soon after it
   * changed, and a full scan runs at start, every rescanSeconds, after failures, and whenever
   * events were lost. Without them (turned off, or unavailable), a full scan every interval.
   */
  async run(signal: AbortSignal): Promise<void> {
    const watcher = this.settings.events
      ? new ChangeWatcher({ maxWatches: this.settings.maxWatches, maxPending: 100_000 })
      : undefined;
    this.watcher = watcher;
    this.stall.start();
    let failures = 0;
    let lastWaiting = "";
    let nextScan = 0;
    let announced = "";
    while (!signal.aborted) {
      const full = !watcher || !!watcher.unavailable || watcher.needsScan || Date.now() >= nextScan;
      const changes = watcher?.take();
      const outcome = await this.syncOnce(signal, full ? undefined : changes);
      if (signal.aborted) break;
      announced = this.announceDetection(announced);
      const waiting = outcome.state === "waiting" || outcome.state === "held" ? outcome : undefined;
      if (waiting && waiting.reason !== lastWaiting)
        this.log.info(waiting.state === "held" ? "held by the bandwidth timetable" : "waiting", {
          reason: waiting.reason,
        });
      lastWaiting = waiting?.reason ?? "";
      if (outcome.state === "held") {
        // Nothing is sent until the window opens; then a full scan finds what was written. At
        // least hourly a look (token renewal, config, status heartbeat) meanwhile.
        const until = Math.min(outcome.until ?? Infinity, Date.now() + 3_600_000);
        await this.waitForWork(until, Infinity, signal, false);
        nextScan = 0;
        continue;
      }
      failures = outcome.state === "failed" ? failures + 1 : 0;
      const wait = this.retryWait(outcome, failures);
      nextScan = this.nextScanAfter(outcome, full, nextScan, wait);
      if ((await this.waitForWork(nextScan, wait, signal)) === "config") nextScan = 0;
    }
    watcher?.close();
    this.stall.stop();
    await this.close();
  }

  /** How long until a retry: the interval, doubled per failure in a row (up to 5 minutes). */
  private retryWait(outcome: PassOutcome, failures: number): number {
    const wait = this.intervalSeconds(this.config.current) * 1000;
    if (outcome.state !== "failed") return wait;
    const backoff =
      Math.min(300_000, wait * 2 ** Math.min(failures - 1, 5)) * (0.8 + Math.random() * 0.4);
    this.log.error("sync failed; will retry", {
      reason: outcome.reason,
      retryInSeconds: Math.round(backoff / 1000),
    });
    return backoff;
  }

  /**
   * When the next full scan is due: after a failure or an incomplete pass (or without events)
   * at `wait`; else at the rescan period; sooner for files in their quiet period or due for
   * retention.
   */
  private nextScanAfter(outcome: PassOutcome, full: boolean, nextScan: number, wait: number) {
    const watcher = this.watcher;
    const eventsOn = !!watcher && !watcher.unavailable;
    const failed = outcome.state === "failed";
    const retry = failed || (outcome.state === "synced" && needsRetry(outcome.report));
    // A source folder not made yet (its workload has not written) has no watch to tell of it:
    // it is looked for at the interval, not at the rescan period.
    const unwatched = eventsOn && unwatchedSource(watcher, this.config.current);
    if (!eventsOn || retry || unwatched)
      nextScan = Math.min(full ? Infinity : nextScan, Date.now() + wait);
    else if (full) nextScan = Date.now() + this.settings.rescanSeconds * 1000;
    // Files left for their quiet period: a scan as soon as the first of them has been quiet.
    const quietUntil = outcome.state === "synced" ? outcome.report.quietUntil : undefined;
    if (quietUntil) nextScan = Math.min(nextScan, quietUntil + 100);
    // Files that retention deletes later: a pass (cheap) when the first of them falls due.
    const due = this.retention?.paths.reduce((n, p) => Math.min(n, p.nextDue ?? n), Infinity);
    if (due && due !== Infinity) nextScan = Math.min(nextScan, due + 100);
    return nextScan;
  }

  /** Logs once how new files are noticed, and again when that changes. */
  private announceDetection(announced: string): string {
    const now = this.changeDetection ?? "";
    if (now === announced) return announced;
    if (now === "events")
      this.log.info("following file events; a full scan runs as a safety net", {
        rescanSeconds: this.settings.rescanSeconds,
        watches: this.watcher?.watchCount,
      });
    else this.log.warn("file events are not used: scanning every interval", { why: now });
    return now;
  }

  /**
   * Waits until `until`, a config change (then a full scan), or file events (after a short delay).
   * While the config cannot be read or a status patch failed, it waits at most `troubleMs`: a pass
   * (cheap with no changes) then reads the config again and reports, so a revoked token is
   * noticed and a failed patch retried.
   */
  private async waitForWork(
    until: number,
    troubleMs: number,
    signal: AbortSignal,
    events = true,
  ): Promise<"config" | "other"> {
    const pollMs = this.settings.configPollSeconds * 1000;
    const watcher = events ? this.watcher : undefined;
    const troubleEnd = Date.now() + troubleMs;
    const end = () =>
      this.reportFailed || this.config.problem ? Math.min(until, troubleEnd) : until;
    while (!signal.aborted && Date.now() < end()) {
      if (watcher && (watcher.hasPending || watcher.needsScan)) {
        await new Promise(resolve => setTimeout(resolve, this.settings.eventDelayMs));
        return "other";
      }
      const wake = new AbortController();
      if (watcher) watcher.onChange = () => wake.abort();
      const ms = Math.min(end() - Date.now(), 2 ** 31 - 1);
      const changed = await this.config.nextChange(ms, pollMs, signal, wake.signal);
      if (watcher) watcher.onChange = undefined;
      if (!signal.aborted && changed && (await this.refreshConfig())) return "config";
    }
    return "other";
  }

  /** True when a stop cut a multipart upload short (the next start looks for it to abort). */
  interruptedMultipart = false;

  async close(): Promise<void> {
    if (!this.open) return;
    this.interruptedMultipart ||= this.open.sync.interruptedMultipart;
    await this.open.sync.persist().catch(() => undefined);
    this.open.client.destroy();
    this.open = undefined;
  }
}

/**
 * The changes waiting in data paths of a higher priority than a given one: a pass takes them
 * between two files, so a high-priority file written during a long pass need not wait for its end.
 */
function urgentChanges(watcher: ChangeWatcher, config: DeviceConfig) {
  const priorities = new Map<string, number>();
  for (const w of config.workloads)
    for (const p of w.paths) if (p.priority) priorities.set(pathId(w.name, p.source), p.priority);
  if (!priorities.size) return undefined;
  return (priority: number) => watcher.takeWhere(id => (priorities.get(id) ?? 0) > priority);
}

/** Whether a data path of the config has no watch on its source folder (not there yet). */
function unwatchedSource(watcher: ChangeWatcher, config: DeviceConfig | undefined): boolean {
  return !!config?.workloads.some(w =>
    w.paths.some(p => !watcher.watchesSource(pathId(w.name, p.source))),
  );
}

/** A pass whose files did not all get through is followed by a full scan after the interval. */
const needsRetry = (r: PassReport) =>
  r.failures.length > 0 || r.changedDuringUpload > 0 || r.walkProblems.length > 0;

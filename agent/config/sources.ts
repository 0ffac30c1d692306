/**
 * Where the agent gets its device config: a local JSON file (polled with a stat), or its config
 * Secret through the Kubernetes API with the device's own credentials (watched by name, read
 * with a GET when it changes; polled slowly where the watch is refused). Both report
 * "unchanged" cheaply. The holder keeps the last good config: an invalid or missing new
 * one is refused with a reason, and the last good one stays in force.
 */
import { readFile, stat } from "node:fs/promises";
import type { DeviceApi, DeviceRef } from "../kube/client";
import {
  DEVICE_CONFIG_KEY,
  deviceConfigSecretName,
  parseDeviceConfigJson,
  type DeviceConfig,
} from "./device-config";

export type ConfigRead =
  | { state: "unchanged" }
  | { state: "ok"; config: DeviceConfig }
  /** Not there (yet): a new device whose config the module has not written. */
  | { state: "missing"; reason: string }
  | { state: "invalid"; reason: string };

export interface ConfigSource {
  readonly description: string;
  read(): Promise<ConfigRead>;
  /**
   * Waits up to `ms` for a sign that the config changed: true means "read again". Without it,
   * the holder polls. `signal` ends the source's work for good; `wake` only ends this wait.
   */
  nextChange?(ms: number, signal: AbortSignal, wake?: AbortSignal): Promise<boolean>;
}

/** Where the watch of the config Secret is refused, it is read this often. */
export const SLOW_POLL_MS = 60_000;

function sleep(ms: number, ...signals: (AbortSignal | undefined)[]): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      for (const signal of signals) signal?.removeEventListener("abort", done);
      resolve();
    }
    for (const signal of signals) signal?.addEventListener("abort", done, { once: true });
  });
}

export class FileConfigSource implements ConfigSource {
  private lastSeen = "";

  constructor(private readonly path: string) {}

  get description(): string {
    return `file ${this.path}`;
  }

  async read(): Promise<ConfigRead> {
    let signature: string;
    try {
      const s = await stat(this.path, { bigint: true });
      signature = `${s.size}/${s.mtimeNs}/${s.ino}`;
    } catch (err) {
      this.lastSeen = "";
      return {
        state: "missing",
        reason: `cannot read config file ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      };
    }
    if (signature === this.lastSeen) return { state: "unchanged" };
    this.lastSeen = signature;
    const parsed = parseDeviceConfigJson(await readFile(this.path, "utf8"));
    if (!parsed.ok)
      return { state: "invalid", reason: `config file ${this.path}: ${parsed.error}` };
    return { state: "ok", config: parsed.value };
  }
}

/** The config Secret's watch lasts this long at least, and at most twice as long (as client-go's). */
export const WATCH_SECONDS = 300;

/** While the config Secret does not exist, it is read this often. */
export const MISSING_POLL_MS = 10_000;

export class SecretConfigSource implements ConfigSource {
  private lastVersion = "";
  private missing = false;
  /** Where the watch resumes: the last event's or bookmark's version, else the last read. */
  private watchVersion = "";
  private watching = false;
  private refused = false;
  private pending = false;
  /** Read the Secret at the next read(): at start, and after the watch saw a change. */
  private dirty = true;
  private wake?: () => void;

  constructor(
    private readonly api: DeviceApi,
    private readonly device: DeviceRef,
    /** Told once, with the reason, when the watch is refused and the source polls instead. */
    private readonly onWatchRefused: (reason: string) => void = () => undefined,
  ) {}

  async nextChange(ms: number, signal: AbortSignal, wake?: AbortSignal): Promise<boolean> {
    if (!this.watching) {
      this.watching = true;
      void this.watchLoop(signal);
    }
    if (this.refused) {
      await sleep(Math.min(ms, SLOW_POLL_MS), signal, wake);
      return ms >= SLOW_POLL_MS && !wake?.aborted;
    }
    if (this.pending) {
      this.pending = false;
      return true;
    }
    // While the Secret is missing (a device being deleted, or not configured yet), it is read
    // again every MISSING_POLL_MS: an open watch is not re-authenticated, a read is, so a revoked
    // device learns it.
    const missingPoll = this.missing && ms >= MISSING_POLL_MS;
    return new Promise(resolve => {
      const finish = (changed: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", aborted);
        wake?.removeEventListener("abort", aborted);
        this.wake = undefined;
        this.pending = false;
        resolve(changed);
      };
      const aborted = () => finish(false);
      const timer = setTimeout(
        () => (missingPoll ? ((this.dirty = true), finish(true)) : finish(false)),
        missingPoll ? MISSING_POLL_MS : ms,
      );
      signal.addEventListener("abort", aborted, { once: true });
      wake?.addEventListener("abort", aborted, { once: true });
      if (wake?.aborted) aborted();
      this.wake = () => finish(true);
    });
  }

  private notify(): void {
    this.pending = true;
    this.dirty = true;
    this.wake?.();
  }

  /** Follows the Secret from the version last read; reconnects with backoff after a cut. */
  private async watchLoop(signal: AbortSignal): Promise<void> {
    const name = deviceConfigSecretName(this.device.name);
    let failures = 0;
    while (!signal.aborted) {
      try {
        const end = await this.api.watchSecret(
          this.device.namespace,
          name,
          this.watchVersion || this.lastVersion,
          { changed: () => this.notify(), progress: v => (this.watchVersion = v) },
          signal,
          WATCH_SECONDS + Math.floor(Math.random() * WATCH_SECONDS),
        );
        failures = 0;
        if (end === "gone") {
          this.lastVersion = "";
          this.watchVersion = "";
          this.notify(); // changes in the gap are unknown: read again
        }
      } catch (err) {
        if (signal.aborted) return;
        if ((err as { status?: number }).status === 403) {
          this.refused = true;
          this.onWatchRefused((err as Error).message);
          this.wake?.();
          return;
        }
        failures++;
        await sleep(Math.min(30_000, 500 * 2 ** failures), signal);
      }
    }
  }

  get description(): string {
    return `Secret ${this.device.namespace}/${deviceConfigSecretName(this.device.name)}`;
  }

  async read(): Promise<ConfigRead> {
    // While the watch runs, nothing changed since the last read unless it says so; a Secret that
    // was missing is read again (an open watch is not re-authenticated: a read tells a revoked
    // device so).
    if (this.watching && !this.refused && !this.dirty && !this.missing)
      return { state: "unchanged" };
    this.dirty = false;
    const name = deviceConfigSecretName(this.device.name);
    const secret = await this.api.getSecretData(this.device.namespace, name).catch(err => {
      this.dirty = true; // read again next time
      throw err;
    });
    this.missing = !secret;
    if (!secret) {
      this.lastVersion = "";
      this.watchVersion = "";
      return {
        state: "missing",
        reason: `Secret ${this.device.namespace}/${name} does not exist yet`,
      };
    }
    if (secret.resourceVersion === this.lastVersion) return { state: "unchanged" };
    this.lastVersion = secret.resourceVersion;
    const text = secret.data[DEVICE_CONFIG_KEY];
    if (text === undefined)
      return {
        state: "invalid",
        reason: `Secret ${this.device.namespace}/${name} has no key ${DEVICE_CONFIG_KEY}`,
      };
    const parsed = parseDeviceConfigJson(text);
    if (!parsed.ok)
      return {
        state: "invalid",
        reason: `Secret ${this.device.namespace}/${name}: ${parsed.error}`,
      };
    return { state: "ok", config: parsed.value };
  }
}

export type ConfigUpdate =
  | { kind: "none" }
  | { kind: "new"; config: DeviceConfig }
  /** The source has a problem; `current` (the last good config, if any) stays in force. */
  | { kind: "refused"; reason: string; repeated: boolean };

export class ConfigHolder {
  private last?: DeviceConfig;
  private lastProblem = "";

  constructor(private readonly source: ConfigSource) {}

  get current(): DeviceConfig | undefined {
    return this.last;
  }

  /** Why the source's latest config is not in force, if it is not. */
  get problem(): string | undefined {
    return this.lastProblem || undefined;
  }

  /**
   * Waits up to `ms` for the config to change; true: refresh now. Polls every `pollMs` by default.
   * `wake` ends the wait early (files changed), with false.
   */
  nextChange(
    ms: number,
    pollMs: number,
    signal: AbortSignal,
    wake?: AbortSignal,
  ): Promise<boolean> {
    if (this.source.nextChange) return this.source.nextChange(ms, signal, wake);
    return sleep(Math.min(ms, pollMs), signal, wake).then(() => !wake?.aborted);
  }

  async refresh(): Promise<ConfigUpdate> {
    let read: ConfigRead;
    try {
      read = await this.source.read();
    } catch (err) {
      read = { state: "missing", reason: (err as Error).message };
    }
    if (read.state === "unchanged") return { kind: "none" };
    if (read.state === "ok") {
      this.lastProblem = "";
      const same = JSON.stringify(read.config) === JSON.stringify(this.last);
      this.last = read.config;
      return same ? { kind: "none" } : { kind: "new", config: read.config };
    }
    const repeated = read.reason === this.lastProblem;
    this.lastProblem = read.reason;
    return { kind: "refused", reason: read.reason, repeated };
  }
}

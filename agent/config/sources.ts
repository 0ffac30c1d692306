/**
 * Where the agent gets its device config: a local JSON file, or its config Secret through the
 * Kubernetes API with the device's own credentials. Both are polled (a stat, or a GET) and
 * report "unchanged" cheaply. The holder keeps the last good config: an invalid or missing new
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

export class SecretConfigSource implements ConfigSource {
  private lastVersion = "";

  constructor(
    private readonly api: DeviceApi,
    private readonly device: DeviceRef,
  ) {}

  get description(): string {
    return `Secret ${this.device.namespace}/${deviceConfigSecretName(this.device.name)}`;
  }

  async read(): Promise<ConfigRead> {
    const name = deviceConfigSecretName(this.device.name);
    const secret = await this.api.getSecretData(this.device.namespace, name);
    if (!secret) {
      this.lastVersion = "";
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

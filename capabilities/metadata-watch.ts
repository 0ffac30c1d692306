/**
 * A cluster-wide watch that sees only names: the API server sends each Secret or ConfigMap
 * event as PartialObjectMetadata, so their data never reaches the module through a watch, is
 * never held in memory for objects no device uses, and cannot be logged. (A Pepr or
 * kubernetes-fluent-client watch caches every object of the kind, and Pepr logs each event whole
 * at debug level.) A referenced object is read with a GET when a device is reconciled.
 *
 * Starts from "now" (a one-item list gives the resource version), follows bookmarks, and after
 * "410 Gone" starts over and reports a resync: changes in the gap are unknown.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { request, type RequestOptions } from "node:https";
import type { IncomingMessage } from "node:http";

export interface MetadataEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
  namespace: string;
  name: string;
  resourceVersion: string;
  labels: Record<string, string>;
  /** uids of the owners */
  owners: string[];
}

/** One line of a watch stream; an ERROR event becomes `{ error }`, anything unreadable undefined. */
export function parseWatchLine(
  line: string,
): MetadataEvent | { error: { code?: number; message?: string } } | undefined {
  let event: {
    type?: string;
    object?: {
      metadata?: {
        namespace?: string;
        name?: string;
        resourceVersion?: string;
        labels?: Record<string, string>;
        ownerReferences?: { uid?: string }[];
      };
      code?: number;
    };
  };
  try {
    event = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (event.type === "ERROR") {
    const status = event.object as { code?: number; message?: string } | undefined;
    return { error: { code: status?.code, message: status?.message } };
  }
  const meta = event.object?.metadata;
  if (!meta?.resourceVersion) return undefined;
  if (!["ADDED", "MODIFIED", "DELETED", "BOOKMARK"].includes(event.type ?? "")) return undefined;
  return {
    type: event.type as MetadataEvent["type"],
    namespace: meta.namespace ?? "",
    name: meta.name ?? "",
    resourceVersion: meta.resourceVersion,
    labels: meta.labels ?? {},
    owners: (meta.ownerReferences ?? []).map(o => o.uid ?? "").filter(Boolean),
  };
}

const METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

class Gone extends Error {}

export interface MetadataWatchHandlers {
  /** An object of the kind was added, changed or deleted. */
  change(event: MetadataEvent): void;
  /** Events may have been missed: look at everything that depends on the kind. */
  resync(): void;
  warn(obj: object, msg: string): void;
}

export class MetadataWatch {
  private stopped = false;
  private current?: ReturnType<typeof request>;

  /**
   * `path`: the kind's cluster-wide collection, e.g. /api/v1/secrets; `labelSelector`: only the
   * objects that carry these labels.
   */
  constructor(
    private readonly path: string,
    private readonly handlers: MetadataWatchHandlers,
    private readonly labelSelector = "",
    private readonly kubeConfig = defaultKubeConfig(),
  ) {}

  async run(): Promise<void> {
    let failures = 0;
    let version: string | undefined;
    while (!this.stopped) {
      try {
        version ??= await this.listVersion();
        version = await this.watchFrom(version);
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof Gone) {
          version = undefined;
          this.handlers.resync();
          continue;
        }
        failures++;
        const delay = Math.min(30_000, 500 * 2 ** failures);
        this.handlers.warn(
          { path: this.path, error: (err as Error).message, retryInMs: delay },
          "metadata watch failed; retrying",
        );
        version = undefined;
        this.handlers.resync();
        await new Promise(resolve => setTimeout(resolve, delay));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.current?.destroy();
  }

  private async open(query: string, accept: string): Promise<IncomingMessage> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("no current cluster in the kubeconfig");
    const options: RequestOptions = { headers: { Accept: accept } };
    await this.kubeConfig.applyToHTTPSOptions(options); // per request: tokens are rotated
    const selector = this.labelSelector
      ? `&labelSelector=${encodeURIComponent(this.labelSelector)}`
      : "";
    return new Promise((resolve, reject) => {
      const req = request(`${cluster.server}${this.path}?${query}${selector}`, options, resolve);
      this.current = req;
      req.on("error", reject);
      req.end();
    });
  }

  private async listVersion(): Promise<string> {
    const res = await this.open("limit=1", METADATA_ONLY);
    const body = await readAll(res);
    if (res.statusCode !== 200) throw new Error(`list ${this.path}: HTTP ${res.statusCode}`);
    const version = (JSON.parse(body) as { metadata?: { resourceVersion?: string } }).metadata
      ?.resourceVersion;
    if (!version) throw new Error(`list ${this.path}: no resourceVersion`);
    return version;
  }

  /** Follows one watch connection; returns the last resource version seen. */
  private async watchFrom(version: string): Promise<string> {
    const res = await this.open(
      `watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${version}`,
      METADATA_WATCH,
    );
    if (res.statusCode === 410) throw new Gone();
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`watch ${this.path}: HTTP ${res.statusCode}`);
    }
    let last = version;
    let buffered = "";
    for await (const chunk of res) {
      buffered += (chunk as Buffer).toString("utf8");
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const event = parseWatchLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        if (!event) continue;
        if ("error" in event) {
          if (event.error.code === 410) throw new Gone();
          throw new Error(`watch ${this.path}: ${event.error.message ?? "error event"}`);
        }
        last = event.resourceVersion;
        if (event.type !== "BOOKMARK") this.handlers.change(event);
      }
    }
    return last;
  }
}

function defaultKubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromDefault(); // KUBECONFIG, ~/.kube/config, or the pod's ServiceAccount
  return config;
}

async function readAll(res: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of res) text += (chunk as Buffer).toString("utf8");
  return text;
}

/**
 * A list-and-watch store of one kind, cluster-wide (client-go's informer, minimal): lists every
 * object in pages, keeps what `keep` takes of each, then follows a watch from the list's
 * resource version, with bookmarks. After "410 Gone" or a failed connection it lists again and
 * reports the difference as changes, so a change in the gap is never lost. An API that is not
 * served (404) is looked for again every `missingRetryMs`.
 *
 * `metadataOnly` asks the API server for PartialObjectMetadata: a Secret's data then never
 * reaches the module, is never held in memory for objects no device uses, and cannot be logged.
 */
import type { IncomingMessage } from "node:http";
import { KubeApi } from "./kube-api";

export interface KubeMeta {
  namespace?: string;
  name?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { uid?: string; kind?: string; name?: string }[];
  managedFields?: { manager?: string }[];
  deletionTimestamp?: unknown;
}

export interface KubeObject {
  metadata?: KubeMeta;
}

/** One line of a watch stream; an ERROR event becomes `{ error }`, anything unreadable undefined. */
export function parseWatchLine(
  line: string,
):
  | { type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"; object: KubeObject }
  | { error: { code?: number; message?: string } }
  | undefined {
  let event: { type?: string; object?: KubeObject & { code?: number; message?: string } };
  try {
    event = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (event.type === "ERROR")
    return { error: { code: event.object?.code, message: event.object?.message } };
  if (!event.object?.metadata?.resourceVersion) return undefined;
  if (!["ADDED", "MODIFIED", "DELETED", "BOOKMARK"].includes(event.type ?? "")) return undefined;
  return { type: event.type as "ADDED", object: event.object };
}

export const objectKey = (m: KubeMeta | undefined) =>
  m?.namespace ? `${m.namespace}/${m.name}` : (m?.name ?? "");

/** Whether resource version `a` is older than `b` (etcd revisions; opaque ones never are). */
export function olderVersion(a: string, b: string): boolean {
  return /^\d+$/.test(a) && /^\d+$/.test(b) && BigInt(a) < BigInt(b);
}

export interface InformerOptions<T> {
  /** The kind's cluster-wide collection, e.g. /api/v1/secrets. */
  path: string;
  /** Only objects with these labels. */
  labelSelector?: string;
  metadataOnly?: boolean;
  /** What the store keeps of each object. */
  keep: (obj: KubeObject) => T;
  pageSize?: number;
  missingRetryMs?: number;
}

export interface InformerHandlers<T> {
  /** An object was added, changed or deleted (`now` undefined), seen by a watch or a relist. */
  change(key: string, now: T | undefined, before: T | undefined): void;
  /** The API server started or stopped serving the kind. */
  servedChanged?(served: boolean): void;
  warn(obj: object, msg: string): void;
}

const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

class Gone extends Error {}
class NotServed extends Error {}

export class Informer<T> {
  private readonly entries = new Map<string, { version: string; value: T }>();
  private stopped = false;
  private current?: IncomingMessage;
  private markSynced!: () => void;
  /** Resolves after the first complete list (or the finding that the API is not served). */
  readonly synced = new Promise<void>(resolve => (this.markSynced = resolve));
  hasSynced = false;
  /** False while the API server does not serve the kind (404 on its collection). */
  served = true;

  constructor(
    private readonly options: InformerOptions<T>,
    private readonly handlers: InformerHandlers<T>,
    private readonly api = new KubeApi(),
  ) {}

  get(key: string): T | undefined {
    return this.entries.get(key)?.value;
  }

  version(key: string): string | undefined {
    return this.entries.get(key)?.version;
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Takes in an object the module just wrote (the API server's answer), so that the next
   * reconcile does not write it again before the watch brings it. Never replaces a newer one,
   * and reports no change.
   */
  observe(obj: KubeObject): void {
    const version = obj.metadata?.resourceVersion;
    if (!version) return;
    const key = objectKey(obj.metadata);
    const old = this.entries.get(key);
    if (old && olderVersion(version, old.version)) return;
    this.entries.set(key, { version, value: this.options.keep(obj) });
  }

  async run(): Promise<void> {
    let failures = 0;
    let version: string | undefined;
    while (!this.stopped) {
      try {
        version ??= await this.relist();
        version = await this.watchFrom(version);
        failures = 0;
      } catch (err) {
        version = undefined;
        if (this.stopped) break;
        if (err instanceof Gone) continue;
        if (err instanceof NotServed) {
          this.setServed(false);
          await sleep(this.options.missingRetryMs ?? 60_000);
          continue;
        }
        failures++;
        const delay = Math.min(30_000, 500 * 2 ** failures);
        this.handlers.warn(
          { path: this.options.path, error: (err as Error).message, retryInMs: delay },
          "watch failed; will list again",
        );
        await sleep(delay);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.current?.destroy();
  }

  private setServed(served: boolean): void {
    const changed = this.hasSynced && this.served !== served;
    this.served = served;
    if (changed) this.handlers.servedChanged?.(served);
    if (!served) this.replace(new Map());
    this.hasSynced = true;
    this.markSynced();
  }

  /** Lists every object (in pages), reports what changed since the store's view; the version. */
  private async relist(): Promise<string> {
    const found = new Map<string, { version: string; value: T }>();
    let listVersion: string | undefined;
    let next: string | undefined;
    do {
      const query = `limit=${this.options.pageSize ?? 500}${next ? `&continue=${encodeURIComponent(next)}` : ""}`;
      const res = await this.open(query, this.options.metadataOnly ? METADATA_LIST : undefined);
      const body = await readAll(res);
      if (res.statusCode === 404) throw new NotServed();
      if (res.statusCode === 410) throw new Gone(); // the continue token expired
      if (res.statusCode !== 200)
        throw new Error(`list ${this.options.path}: HTTP ${res.statusCode}`);
      const list = JSON.parse(body) as {
        metadata?: { resourceVersion?: string; continue?: string };
        items?: KubeObject[];
      };
      listVersion ??= list.metadata?.resourceVersion;
      for (const item of list.items ?? [])
        found.set(objectKey(item.metadata), {
          version: item.metadata?.resourceVersion ?? "",
          value: this.options.keep(item),
        });
      next = list.metadata?.continue || undefined;
    } while (next);
    if (!listVersion) throw new Error(`list ${this.options.path}: no resourceVersion`);
    this.replace(found);
    this.setServed(true);
    return listVersion;
  }

  private replace(found: Map<string, { version: string; value: T }>): void {
    const old = new Map(this.entries);
    this.entries.clear();
    for (const [key, entry] of found) this.entries.set(key, entry);
    for (const [key, entry] of found) {
      const before = old.get(key);
      if (before?.version !== entry.version) this.handlers.change(key, entry.value, before?.value);
    }
    for (const [key, before] of old)
      if (!found.has(key)) this.handlers.change(key, undefined, before.value);
  }

  private apply(type: string, obj: KubeObject): void {
    const key = objectKey(obj.metadata);
    const version = obj.metadata!.resourceVersion!;
    const old = this.entries.get(key);
    if (type === "DELETED") {
      this.entries.delete(key);
      this.handlers.change(key, undefined, old?.value);
      return;
    }
    // Already taken in through observe(), or older than what is held.
    if (old && (old.version === version || olderVersion(version, old.version))) return;
    const value = this.options.keep(obj);
    this.entries.set(key, { version, value });
    this.handlers.change(key, value, old?.value);
  }

  private async open(query: string, accept = "application/json"): Promise<IncomingMessage> {
    const selector = this.options.labelSelector
      ? `&labelSelector=${encodeURIComponent(this.options.labelSelector)}`
      : "";
    this.current = await this.api.open("GET", `${this.options.path}?${query}${selector}`, {
      Accept: accept,
    });
    return this.current;
  }

  /** Follows one watch connection; returns the last resource version seen. */
  private async watchFrom(version: string): Promise<string> {
    // A random timeout (5-10 minutes, as client-go's reflector) spreads renewals out.
    const timeout = 300 + Math.floor(Math.random() * 300);
    const res = await this.open(
      `watch=1&allowWatchBookmarks=true&timeoutSeconds=${timeout}&resourceVersion=${version}`,
      this.options.metadataOnly ? METADATA_WATCH : undefined,
    );
    if (res.statusCode === 410) throw new Gone();
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`watch ${this.options.path}: HTTP ${res.statusCode}`);
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
          throw new Error(`watch ${this.options.path}: ${event.error.message ?? "error event"}`);
        }
        last = event.object.metadata!.resourceVersion!;
        if (event.type !== "BOOKMARK") this.apply(event.type, event.object);
      }
    }
    return last;
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of res) text += (chunk as Buffer).toString("utf8");
  return text;
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

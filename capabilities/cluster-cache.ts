/**
 * The module's view of the cluster, kept by watches (informer.ts), so that a reconcile reads
 * nothing from the API server in the usual case and a resync reads nothing at all:
 *   - devices, workloads and claims, whole (without managedFields), with namespace indexes;
 *   - every Secret and ConfigMap, by metadata only: whether one exists and its version; the data
 *     of those devices use is read once per version (a GET) and kept;
 *   - the module's own config Secrets, with a digest of their config and the last good storage;
 *   - every ServiceAccount, Role and RoleBinding, by metadata: the module's own and others' of
 *     the same names (conflicts), who changed them, and which version the module wrote.
 * Each change is routed to the devices it concerns (device-changes.ts, references.ts).
 */
import { createHash } from "node:crypto";
import {
  DEVICE_CONFIG_KEY,
  parseDeviceConfigJson,
  type Storage,
} from "../agent/config/device-config";
import { devicesForWorkload, deviceNeedsReconcile, ownerDeviceKey } from "./device-changes";
import { APPLIED_ANNOTATION, DEVICE_ANNOTATION, MANAGED_BY } from "./device-resources";
import type { EdgeDevice } from "./generated/edgedevice-v1alpha1";
import type { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import type { ObjectBucketClaim } from "./generated/objectbucketclaim-v1alpha1";
import {
  Informer,
  olderVersion,
  type InformerHandlers,
  type KubeMeta,
  type KubeObject,
} from "./informer";
import type { KubeApi } from "./kube-api";
import type { References } from "./references";
import type { Data } from "./storage";

/** What the cache keeps of an object known by its metadata. */
export interface MetaEntry {
  metadata: {
    namespace?: string;
    name?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { uid?: string }[];
  };
  /** Field managers that wrote it (managedFields). */
  managers: string[];
}

export interface ConfigSecretEntry extends MetaEntry {
  /** sha256 of the config key's value (base64), as written. */
  digest?: string;
  lastGood: Storage | null;
  /** The key prefix the config holds (kept while a new keyPrefix template is unusable). */
  keyPrefix: string;
}

export const digest = (text: string) => createHash("sha256").update(text).digest("hex");

/** The module's annotations of an object, if it has any. */
function ownAnnotations(all?: Record<string, string>): Record<string, string> | undefined {
  if (!all) return undefined;
  const own = Object.entries(all).filter(
    ([k]) => k === APPLIED_ANNOTATION || k === DEVICE_ANNOTATION,
  );
  return own.length ? Object.fromEntries(own) : undefined;
}

const metaEntry = (obj: KubeObject): MetaEntry => {
  const m: KubeMeta = obj.metadata ?? {};
  return {
    metadata: {
      namespace: m.namespace,
      name: m.name,
      labels: m.labels,
      // Only the module's own: kubectl's last-applied-configuration may hold a whole object.
      annotations: ownAnnotations(m.annotations),
      ownerReferences: m.ownerReferences?.map(r => ({ uid: r.uid })),
    },
    managers: [...new Set((m.managedFields ?? []).map(f => f.manager ?? ""))],
  };
};

const configSecretEntry = (obj: KubeObject): ConfigSecretEntry => {
  const data = (obj as { data?: Record<string, string> }).data?.[DEVICE_CONFIG_KEY];
  const parsed = data ? parseDeviceConfigJson(Buffer.from(data, "base64").toString("utf8")) : null;
  return {
    ...metaEntry(obj),
    digest: data ? digest(data) : undefined,
    lastGood: parsed?.ok ? parsed.value.storage : null,
    keyPrefix: parsed?.ok ? parsed.value.keyPrefix : "",
  };
};

/** The whole object without managedFields and annotations, which the module never reads. */
const whole = <T>(obj: KubeObject): T =>
  ({
    ...obj,
    metadata: { ...obj.metadata, managedFields: undefined, annotations: undefined },
  }) as T;

/**
 * A device with only what conditions follow of the agent's status.dataUpload (that it reports,
 * disk pressure, a stall): not the per-workload figures the module never reads.
 */
const device = (obj: KubeObject): EdgeDevice => {
  const d = whole<EdgeDevice>(obj);
  const reported = d.status?.dataUpload;
  if (!d.status) return d;
  const dataUpload = reported && {
    ...(reported.diskPressure ? { diskPressure: reported.diskPressure } : {}),
    ...(reported.stalled ? { stalled: reported.stalled } : {}),
  };
  return { ...d, status: { ...d.status, dataUpload } };
};

/** Keys by namespace, for "the devices (or workloads) in this namespace". */
class NamespaceIndex {
  private byNamespace = new Map<string, Set<string>>();

  update(key: string, present: boolean): void {
    const namespace = key.split("/")[0];
    let keys = this.byNamespace.get(namespace);
    if (present) {
      if (!keys) this.byNamespace.set(namespace, (keys = new Set()));
      keys.add(key);
    } else if (keys) {
      keys.delete(key);
      if (!keys.size) this.byNamespace.delete(namespace);
    }
  }

  keys(namespace: string): Iterable<string> {
    return this.byNamespace.get(namespace) ?? [];
  }
}

export type AccessKind = "ServiceAccount" | "Role" | "RoleBinding";
export type DataKind = "ConfigMap" | "Secret";

export interface CacheEvents {
  /** Reconcile this device (namespace/name). */
  enqueue(key: string): void;
  references: References;
  warn(obj: object, msg: string): void;
}

const API = "/apis/management.project-flotta.io/v1alpha1";
const RBAC = "/apis/rbac.authorization.k8s.io/v1";

export class ClusterCache {
  readonly devices: Informer<EdgeDevice>;
  readonly workloads: Informer<EdgeWorkload>;
  readonly claims: Informer<ObjectBucketClaim>;
  readonly objects: Record<DataKind, Informer<MetaEntry>>;
  readonly configSecrets: Informer<ConfigSecretEntry>;
  readonly access: Record<AccessKind, Informer<MetaEntry>>;
  private readonly deviceIndex = new NamespaceIndex();
  private readonly workloadIndex = new NamespaceIndex();
  /** Data of the ConfigMaps and Secrets devices use, by kind/namespace/name, per version. */
  private readonly contents = new Map<string, { version: string; data: Data }>();

  constructor(
    private readonly events: CacheEvents,
    private readonly api: KubeApi,
  ) {
    const handlers = <T>(change: InformerHandlers<T>["change"]): InformerHandlers<T> => ({
      change,
      warn: events.warn,
    });
    this.devices = new Informer<EdgeDevice>(
      { path: `${API}/edgedevices`, keep: device },
      handlers((key, now, before) => this.deviceChanged(key, now, before)),
      api,
    );
    this.workloads = new Informer<EdgeWorkload>(
      { path: `${API}/edgeworkloads`, keep: whole },
      handlers((key, now, before) => this.workloadChanged(key, now, before)),
      api,
    );
    this.claims = new Informer<ObjectBucketClaim>(
      { path: "/apis/objectbucket.io/v1alpha1/objectbucketclaims", keep: whole },
      {
        ...handlers<ObjectBucketClaim>(key => this.deviceKeyIfKnown(key)),
        // Claims became possible (or impossible): every device may want one.
        servedChanged: () => {
          for (const key of this.devices.keys()) events.enqueue(key);
        },
      },
      api,
    );
    this.objects = {
      ConfigMap: this.dataInformer("ConfigMap", "/api/v1/configmaps"),
      Secret: this.dataInformer("Secret", "/api/v1/secrets"),
    };
    this.configSecrets = new Informer<ConfigSecretEntry>(
      {
        path: "/api/v1/secrets",
        labelSelector: `${Object.keys(MANAGED_BY)[0]}=${Object.values(MANAGED_BY)[0]}`,
        keep: configSecretEntry,
      },
      handlers((_key, now, before) => this.ownedChanged(now ?? before)),
      api,
    );
    const accessInformer = (path: string) =>
      new Informer<MetaEntry>(
        { path, metadataOnly: true, keep: metaEntry },
        handlers((_key, now, before) => this.ownedChanged(now ?? before)),
        api,
      );
    this.access = {
      ServiceAccount: accessInformer("/api/v1/serviceaccounts"),
      Role: accessInformer(`${RBAC}/roles`),
      RoleBinding: accessInformer(`${RBAC}/rolebindings`),
    };
  }

  private all(): Informer<unknown>[] {
    return [
      this.devices,
      this.workloads,
      this.claims,
      this.configSecrets,
      ...Object.values(this.objects),
      ...Object.values(this.access),
    ] as Informer<unknown>[];
  }

  /** Starts every watch (the watcher process only). */
  start(): void {
    for (const informer of this.all()) void informer.run();
  }

  stop(): void {
    for (const informer of this.all()) informer.stop();
  }

  /** Every store has listed once: until then a reconcile would take "not listed" for "absent". */
  get hasSynced(): boolean {
    return this.all().every(i => i.hasSynced);
  }

  devicesIn(namespace: string): EdgeDevice[] {
    return [...this.deviceIndex.keys(namespace)].map(k => this.devices.get(k)!).filter(Boolean);
  }

  workloadsIn(namespace: string): EdgeWorkload[] {
    return [...this.workloadIndex.keys(namespace)].map(k => this.workloads.get(k)!).filter(Boolean);
  }

  /**
   * A ConfigMap's or Secret's data (Secrets decoded); undefined when it does not exist. Read
   * with `fetch` only when the version the watch reports is not the one held.
   */
  async data(
    kind: DataKind,
    namespace: string,
    name: string,
    fetch: () => Promise<{ version: string; data: Data }>,
  ): Promise<Data> {
    const key = `${namespace}/${name}`;
    const version = this.objects[kind].version(key);
    if (version === undefined) return undefined;
    const held = this.contents.get(`${kind}/${key}`);
    if (held && (held.version === version || olderVersion(version, held.version))) return held.data;
    const read = await fetch();
    this.contents.set(`${kind}/${key}`, read);
    return read.data;
  }

  private dataInformer(kind: DataKind, path: string): Informer<MetaEntry> {
    return new Informer<MetaEntry>(
      { path, metadataOnly: true, keep: metaEntry },
      {
        change: key => {
          this.contents.delete(`${kind}/${key}`);
          const [namespace, name] = key.split("/");
          for (const device of this.events.references.devicesUsing(kind, namespace, name))
            this.events.enqueue(device);
        },
        warn: this.events.warn,
      },
      this.api,
    );
  }

  private deviceChanged(key: string, now?: EdgeDevice, before?: EdgeDevice): void {
    this.deviceIndex.update(key, !!now);
    if (deviceNeedsReconcile(before, now)) this.events.enqueue(key);
  }

  private workloadChanged(key: string, now?: EdgeWorkload, before?: EdgeWorkload): void {
    this.workloadIndex.update(key, !!now);
    const namespace = key.split("/")[0];
    for (const device of devicesForWorkload(before, now, this.devicesIn(namespace)))
      this.events.enqueue(device);
  }

  /** An object the module made for a device changed or went: that device looks again. */
  private ownedChanged(entry?: MetaEntry): void {
    const owner = ownerDeviceKey(entry?.metadata);
    if (owner) this.deviceKeyIfKnown(owner);
  }

  private deviceKeyIfKnown(key: string): void {
    if (this.devices.get(key)) this.events.enqueue(key);
  }
}

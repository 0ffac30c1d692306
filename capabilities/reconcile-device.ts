/**
 * Reconciles one device from the cluster cache (cluster-cache.ts): lets the pure functions decide
 * (storage.ts, assemble-config.ts, device-status.ts) and writes only what changed (its config
 * Secret, access objects, claim, status, Events). It reads from the API server only the data of
 * a ConfigMap or Secret whose version it has not read yet. Every request waits for the rate
 * limiter. Any error throws: the work queue retries with backoff.
 */
import { hostname } from "node:os";
import {
  DEVICE_CONFIG_KEY,
  deviceConfigSecretName,
  type DeviceConfig,
  type Storage,
} from "../agent/config/device-config";
import type { RateLimiter } from "../agent/sync/rate-limit";
import { assembleDeviceConfig, type DeviceUpload } from "./assemble-config";
import type { ClaimEndpoints } from "./claim-endpoint";
import { digest, type AccessKind, type ClusterCache, type DataKind } from "./cluster-cache";
import { sameModuleStatus } from "./conditions";
import {
  APPLIED_ANNOTATION,
  accessNeedsApply,
  bucketClaim,
  configSecret,
  deviceAccess,
  deviceAccessName,
  foreignObject,
  type OwnerDevice,
} from "./device-resources";
import {
  deviceEvents,
  moduleStatus,
  workloadEvents,
  type EventInput,
  type Findings,
  type AgentFindings,
} from "./device-status";
import { EdgeDevice } from "./generated/edgedevice-v1alpha1";
import { ObjectBucketClaim } from "./generated/objectbucketclaim-v1alpha1";
import {
  expandKeyPrefix,
  keyPrefixes,
  overlappingWorkloads,
  type SharedBuckets,
} from "./key-space";
import { getOrUndefined } from "./kube-errors";
import type { ModuleMetrics } from "./module-metrics";
import { objectPath, type KubeApi, type KubeObject } from "./kube-api";
import type { References } from "./references";
import { wantsObc, type ModuleSettings } from "./settings";
import { workloadSelects } from "./selector";
import { resolveStorage, type ObcState, type StorageInputs } from "./storage";
import { workloadProblems } from "./workload-validation";

export interface ReconcileContext {
  settings: ModuleSettings;
  references: References;
  cache: ClusterCache;
  api: KubeApi;
  /** Paces every request the reconciles send. */
  limiter: RateLimiter;
  /** "<resource version> <digest>" of each access object this process applied (by Kind/ns/name). */
  applied: Map<string, string>;
  /** Where devices reach claim buckets. */
  claimEndpoints: ClaimEndpoints;
  /** What each device writes where, to tell devices sharing a bucket. */
  sharedBuckets: SharedBuckets;
  /** Reconcile another device (one that shares a bucket with this one). */
  enqueue: (key: string) => void;
  /** Devices by readiness and storage, for the module's metrics. */
  metrics?: Pick<ModuleMetrics, "device">;
}

/** What happens next, as controller-runtime's reconcile.Result: look again after a delay. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** One request to the API server, when the rate limiter allows. */
async function call<T>(ctx: ReconcileContext, request: () => Promise<T>): Promise<T> {
  await ctx.limiter.take(1);
  return request();
}

const decode = (data?: Record<string, string>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );

/** A ConfigMap's or Secret's data from the cache; read from the API server once per version. */
function readData(ctx: ReconcileContext, kindName: DataKind, namespace: string, name: string) {
  return ctx.cache.data(kindName, namespace, name, async () => {
    const path = objectPath({ apiVersion: "v1", kind: kindName, metadata: { namespace, name } });
    const obj = await call(ctx, () =>
      getOrUndefined(name, () =>
        ctx.api.get<{ data?: Record<string, string>; metadata?: { resourceVersion?: string } }>(
          path,
        ),
      ),
    );
    const data = obj
      ? kindName === "Secret"
        ? decode(obj.data)
        : { ...(obj.data ?? {}) }
      : undefined;
    return { version: obj?.metadata?.resourceVersion ?? "", data };
  });
}

/** The claim's state; creates the claim when the device wants one and it does not exist. */
async function obcState(
  device: EdgeDevice,
  owner: OwnerDevice,
  ctx: ReconcileContext,
  conflicts: string[],
): Promise<ObcState> {
  const { namespace, name } = owner;
  const createOBC = device.spec?.storage?.s3?.createOBC;
  if (!wantsObc(createOBC, ctx.settings, true)) return { state: "not-wanted" };
  // "auto" wants a claim only where the API is served; an explicit createOBC: true is told why not.
  if (!ctx.cache.claims.served)
    return wantsObc(createOBC, ctx.settings, false)
      ? { state: "api-missing" }
      : { state: "not-wanted" };
  const claim = ctx.cache.claims.get(`${namespace}/${name}`);
  const foreign = foreignObject("ObjectBucketClaim", claim, owner);
  if (foreign) {
    conflicts.push(foreign); // someone else's claim: never used for this device
    return { state: "not-wanted" };
  }
  if (!claim) {
    const claimObject = bucketClaim({ namespace, name }, ctx.settings.obcStorageClass);
    ctx.cache.claims.observe(
      await call(ctx, () => ctx.api.apply(claimObject as ObjectBucketClaim)),
    );
    return { state: "missing", name };
  }
  const phase = claim.status?.phase;
  if (phase !== "Bound")
    return { state: "present", name, phase, configMap: undefined, secret: undefined };
  return {
    state: "present",
    name,
    phase,
    configMap: await readData(ctx, "ConfigMap", namespace, name),
    secret: await readData(ctx, "Secret", namespace, name),
    endpoint: await ctx.claimEndpoints.get(),
  };
}

/** The claim's state and the external ConfigMap and Secret that spec.storage.s3 names. */
async function readStorageInputs(
  device: EdgeDevice,
  owner: OwnerDevice,
  ctx: ReconcileContext,
  conflicts: string[],
): Promise<Pick<StorageInputs, "obc" | "external">> {
  const s3 = device.spec?.storage?.s3;
  const obc = await obcState(device, owner, ctx, conflicts);
  if (!s3?.configMapName && !s3?.secretName) return { obc };
  const { namespace } = owner;
  return {
    obc,
    external: {
      configMapName: s3.configMapName,
      secretName: s3.secretName,
      configMap: s3.configMapName
        ? await readData(ctx, "ConfigMap", namespace, s3.configMapName)
        : undefined,
      secret: s3.secretName ? await readData(ctx, "Secret", namespace, s3.secretName) : undefined,
    },
  };
}

const ACCESS_KINDS = [
  ["ServiceAccount", "serviceAccount"],
  ["Role", "role"],
  ["RoleBinding", "roleBinding"],
] as const;

/**
 * The device's ServiceAccount, Role and RoleBinding, each applied when missing, changed by
 * someone else, or not what this module version applies; none while one of the names is taken.
 */
async function applyAccess(
  owner: OwnerDevice,
  ownsConfigSecret: boolean,
  ctx: ReconcileContext,
  conflicts: string[],
) {
  const access = deviceAccess(owner, ownsConfigSecret);
  const key = `${owner.namespace}/${access.serviceAccount.metadata.name}`;
  const existing = (k: AccessKind) => ctx.cache.access[k].get(key);
  const taken = ACCESS_KINDS.map(([k]) => foreignObject(k, existing(k), owner)).filter(
    (c): c is string => !!c,
  );
  if (taken.length) {
    conflicts.push(...taken); // looked at again on the next reconcile
    return;
  }
  for (const [k, field] of ACCESS_KINDS) {
    const entry = existing(k);
    const current = entry && {
      version: ctx.cache.access[k].version(key),
      annotations: entry.metadata.annotations,
      managers: entry.managers,
    };
    // What this process applied: its version, for the digest applied (the Role changes with
    // the config Secret's ownership, see deviceAccess).
    const sum = access[field].metadata.annotations[APPLIED_ANNOTATION];
    const [appliedVersion, appliedSum] = ctx.applied.get(`${k}/${key}`)?.split(" ") ?? [];
    const known = appliedSum === sum ? appliedVersion : undefined;
    if (!accessNeedsApply(current, access[field], known)) continue;
    const written = await call(ctx, () => ctx.api.apply(access[field] as KubeObject));
    ctx.cache.access[k].observe(written);
    ctx.applied.set(`${k}/${key}`, `${written.metadata!.resourceVersion!} ${sum}`);
  }
}

/** The device's config Secret as the cache holds it, unless someone else owns that name. */
function readConfigSecret(owner: OwnerDevice, ctx: ReconcileContext, conflicts: string[]) {
  const name = deviceConfigSecretName(owner.name);
  const key = `${owner.namespace}/${name}`;
  // Someone else's Secret of that name is neither read as the last good config nor written.
  const foreign = foreignObject("Secret", ctx.cache.objects.Secret.get(key), owner);
  if (foreign) conflicts.push(foreign);
  const ours = foreign ? undefined : ctx.cache.configSecrets.get(key);
  return {
    name,
    foreign: !!foreign,
    digest: ours?.digest,
    lastGood: ours?.lastGood ?? null,
    keyPrefix: ours?.keyPrefix ?? "",
  };
}

/**
 * The device's config from the storage and the workloads that select it. Left out: invalid ones
 * (stored before the webhook, or while the module was down) and those whose targets overlap an
 * older workload's on this device; the other workloads and the storage still reach it.
 */
function assembleFor(
  device: EdgeDevice,
  storage: Storage | null,
  upload: DeviceUpload,
  ctx: ReconcileContext,
) {
  const { namespace, name, labels } = device.metadata as {
    namespace: string;
    name: string;
    labels?: Record<string, string>;
  };
  const ref = { namespace, name, labels };
  const selecting = ctx.cache.workloadsIn(namespace).filter(w => workloadSelects(w, ref));
  const invalid = selecting
    .map(workload => ({ workload, problems: workloadProblems(workload) }))
    .filter(r => r.problems.length);
  const valid = selecting.filter(w => !invalid.some(r => r.workload === w));
  const overlapping = overlappingWorkloads(valid);
  const kept = valid.filter(w => !overlapping.some(r => r.workload === w));
  return {
    config: assembleDeviceConfig(ref, storage, kept, upload),
    invalid: [...invalid, ...overlapping],
  };
}

/** The device's key prefix: its template expanded, or the one in use while the template is bad. */
function keyPrefixFor(device: EdgeDevice, owner: OwnerDevice, inUse: string) {
  const template = device.spec?.storage?.keyPrefix;
  const expanded = expandKeyPrefix(template, owner);
  return "problem" in expanded
    ? { template, prefix: inUse, problem: expanded.problem }
    : { template, prefix: expanded.prefix };
}

/** Records what the device writes where; devices whose sharing changed are reconciled too. */
function shareBucket(key: string, config: DeviceConfig, ctx: ReconcileContext) {
  const { storage } = config;
  const space = storage && {
    bucket: `${storage.endpoint}/${storage.bucket}`,
    prefixes: keyPrefixes(
      config.keyPrefix,
      config.workloads.flatMap(w => w.paths.map(p => p.target)),
    ),
  };
  const shared = ctx.sharedBuckets.update(key, space || undefined);
  for (const other of shared.affected) ctx.enqueue(other);
  return shared;
}

/** What the agent reports that the device's conditions follow. */
function agentFindings(device: EdgeDevice, config: DeviceConfig): AgentFindings {
  const reported = device.status?.dataUpload;
  return {
    reporting: !!reported,
    capped: config.workloads.some(w => w.paths.some(p => p.retention?.maxBytes !== undefined)),
    stallAfterSeconds: config.stallAfterSeconds,
    diskPressure: reported?.diskPressure || undefined,
    stalled: reported?.stalled || undefined,
  };
}

/** The module's status fields and Events, written only when they changed. */
async function writeStatus(
  device: EdgeDevice,
  findings: Findings,
  ctx: ReconcileContext,
): Promise<void> {
  const { namespace, name } = device.metadata as { namespace: string; name: string };
  const old = device.status ?? {};
  const status = moduleStatus(findings, old, device.metadata?.generation, new Date().toISOString());
  ctx.metrics?.device(`${namespace}/${name}`, {
    ready: status.conditions.find(c => c.type === "Ready")?.status ?? "Unknown",
    storage: status.storage.kind ?? "none",
  });
  if (sameModuleStatus(status, old)) return;
  // A merge patch of the module's own fields: the agent's status.dataUpload stays as it is.
  const patched = await call(ctx, () =>
    ctx.api.patchStatus({
      apiVersion: "management.project-flotta.io/v1alpha1",
      kind: "EdgeDevice",
      metadata: { name, namespace },
      status,
    } as EdgeDevice),
  );
  ctx.cache.devices.observe(patched);
  for (const event of deviceEvents(old, status))
    await call(ctx, () => createEvent(ctx.api, device, "EdgeDevice", event));
  for (const { workload, event } of workloadEvents(
    findings.invalid,
    old.conditions,
    status.conditions,
  ))
    await call(ctx, () => createEvent(ctx.api, workload, "EdgeWorkload", event));
}

/**
 * One device: access objects, storage inputs, config Secret, status. Returns when to look again;
 * an error throws and the queue retries.
 */
export async function reconcileDevice(
  key: string,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  if (!ctx.cache.hasSynced) return { requeueAfterMs: 1_000 }; // "not listed yet" is not "absent"
  const [namespace, name] = key.split("/");
  const device = ctx.cache.devices.get(key);
  if (!device || device.metadata?.deletionTimestamp) {
    ctx.references.forget(key); // its Secret, ServiceAccount, Role and RoleBinding are garbage-collected
    for (const other of ctx.sharedBuckets.update(key, undefined).affected) ctx.enqueue(other);
    ctx.metrics?.device(key, undefined);
    for (const [k] of ACCESS_KINDS)
      ctx.applied.delete(`${k}/${namespace}/${deviceAccessName(name)}`);
    return {};
  }
  const owner: OwnerDevice = { namespace, name, uid: device.metadata!.uid! };
  const conflicts: string[] = [];
  // Someone else's Secret of the config's name: the device's Role must not grant it.
  const current = readConfigSecret(owner, ctx, conflicts);
  await applyAccess(owner, !current.foreign, ctx, conflicts);

  const { obc, external } = await readStorageInputs(device, owner, ctx, conflicts);
  const obcName = obc.state === "missing" || obc.state === "present" ? obc.name : undefined;
  const s3 = device.spec?.storage?.s3;
  ctx.references.record(key, namespace, {
    configMaps: [s3?.configMapName, obcName].filter((n): n is string => !!n),
    // A foreign Secret in the config's name: its removal lets the module take the name.
    secrets: [s3?.secretName, obcName, current.foreign ? current.name : undefined].filter(
      (n): n is string => !!n,
    ),
  });
  const resolution = resolveStorage({ namespace, obc, external });

  // A failure keeps the storage of the last good config; workloads still follow.
  const storage = resolution.problem ? current.lastGood : (resolution.storage ?? null);
  const keyPrefix = keyPrefixFor(device, owner, current.keyPrefix);
  const { config, invalid } = assembleFor(
    device,
    storage,
    { keyPrefix: keyPrefix.prefix, ...device.spec?.dataUpload },
    ctx,
  );
  const secret = configSecret(owner, config);
  if (!current.foreign && current.digest !== digest(secret.data[DEVICE_CONFIG_KEY]))
    ctx.cache.configSecrets.observe(await call(ctx, () => ctx.api.apply(secret)));

  await writeStatus(
    device,
    {
      resolution,
      storage,
      lastGood: current.lastGood,
      conflicts,
      invalid,
      keyPrefix,
      shared: shareBucket(key, config, ctx),
      configSecret: current.name,
      obcName,
      agent: agentFindings(device, config),
    },
    ctx,
  );
  return {};
}

async function createEvent(
  api: KubeApi,
  object: { metadata?: { namespace?: string; name?: string; uid?: string } },
  kindName: "EdgeDevice" | "EdgeWorkload",
  event: EventInput,
): Promise<void> {
  const { namespace, name, uid } = object.metadata as {
    namespace: string;
    name: string;
    uid: string;
  };
  const time = new Date().toISOString();
  await api.create({
    apiVersion: "v1",
    kind: "Event",
    metadata: { generateName: `${name}.`, namespace },
    involvedObject: {
      apiVersion: "management.project-flotta.io/v1alpha1",
      kind: kindName,
      name,
      namespace,
      uid,
    },
    type: event.type,
    reason: event.reason,
    message: event.message.slice(0, 1024),
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
    source: { component: "edge-data-upload" },
    reportingComponent: "edge-data-upload",
    reportingInstance: hostname(),
  });
}

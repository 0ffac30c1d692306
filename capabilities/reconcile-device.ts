/**
 * Reconciles one device: reads what its config is built from, lets the pure functions decide
 * (storage.ts, assemble-config.ts, device-status.ts), and writes only what changed (its config
 * Secret, access objects, claim, status, Events). Any error throws: the work queue retries with
 * backoff.
 */
import { K8s, kind } from "pepr";
import { hostname } from "node:os";
import {
  DEVICE_CONFIG_KEY,
  deviceConfigSecretName,
  parseDeviceConfigJson,
  type Storage,
} from "../agent/config/device-config";
import { assembleDeviceConfig } from "./assemble-config";
import type { ClaimEndpoints } from "./claim-endpoint";
import { sameModuleStatus } from "./conditions";
import {
  bucketClaim,
  configSecret,
  deviceAccess,
  foreignObject,
  type OwnerDevice,
} from "./device-resources";
import {
  deviceEvents,
  moduleStatus,
  workloadEvents,
  type EventInput,
  type Findings,
} from "./device-status";
import { EdgeDevice } from "./generated/edgedevice-v1alpha1";
import { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import { ObjectBucketClaim } from "./generated/objectbucketclaim-v1alpha1";
import { ApiMissing, getOrUndefined } from "./kube-errors";
import type { References } from "./references";
import { wantsObc, type ModuleSettings } from "./settings";
import { workloadSelects } from "./selector";
import { resolveStorage, type Data, type ObcState, type StorageInputs } from "./storage";
import { workloadProblems } from "./workload-validation";

export interface ReconcileContext {
  settings: ModuleSettings;
  references: References;
  /** Devices whose access objects this process already applied (by uid). */
  accessApplied: Set<string>;
  /** Where devices reach claim buckets. */
  claimEndpoints: ClaimEndpoints;
}

/** What happens next, as controller-runtime's reconcile.Result: look again after a delay. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

const decode = (data?: Record<string, string>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );

async function readConfigMap(namespace: string, name: string): Promise<Data> {
  const cm = await getOrUndefined(name, () => K8s(kind.ConfigMap).InNamespace(namespace).Get(name));
  return cm ? { ...(cm.data ?? {}) } : undefined;
}

async function readSecret(namespace: string, name: string): Promise<Data> {
  const secret = await getOrUndefined(name, () =>
    K8s(kind.Secret).InNamespace(namespace).Get(name),
  );
  return secret ? decode(secret.data) : undefined;
}

/** The claim's state; creates the claim when the device wants one and it does not exist. */
async function obcState(
  device: EdgeDevice,
  owner: OwnerDevice,
  ctx: ReconcileContext,
  conflicts: string[],
): Promise<ObcState> {
  const { namespace, name } = device.metadata as { namespace: string; name: string };
  const createOBC = device.spec?.storage?.s3?.createOBC;
  if (!wantsObc(createOBC, ctx.settings, true)) return { state: "not-wanted" };
  let claim: ObjectBucketClaim | undefined;
  try {
    claim = await getOrUndefined(name, () =>
      K8s(ObjectBucketClaim).InNamespace(namespace).Get(name),
    );
  } catch (err) {
    if (!(err instanceof ApiMissing)) throw err;
    // "auto" wants a claim only where the API is served; an explicit createOBC: true is told why not.
    return wantsObc(createOBC, ctx.settings, false)
      ? { state: "api-missing" }
      : { state: "not-wanted" };
  }
  const foreign = foreignObject("ObjectBucketClaim", claim, owner);
  if (foreign) {
    conflicts.push(foreign); // someone else's claim: never used for this device
    return { state: "not-wanted" };
  }
  if (!claim) {
    await K8s(ObjectBucketClaim).Apply(
      bucketClaim({ namespace, name }, ctx.settings.obcStorageClass) as ObjectBucketClaim,
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
    configMap: await readConfigMap(namespace, name),
    secret: await readSecret(namespace, name),
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
      configMap: s3.configMapName ? await readConfigMap(namespace, s3.configMapName) : undefined,
      secret: s3.secretName ? await readSecret(namespace, s3.secretName) : undefined,
    },
  };
}

/** The device's ServiceAccount, Role and RoleBinding, unless one of those names is taken. */
async function applyAccess(
  owner: OwnerDevice,
  ctx: ReconcileContext,
  conflicts: string[],
): Promise<void> {
  const access = deviceAccess(owner);
  const name = access.serviceAccount.metadata.name;
  const get = <T>(read: () => Promise<T>) => getOrUndefined(name, read);
  const taken = [
    foreignObject(
      "ServiceAccount",
      await get(() => K8s(kind.ServiceAccount).InNamespace(owner.namespace).Get(name)),
      owner,
    ),
    foreignObject(
      "Role",
      await get(() => K8s(kind.Role).InNamespace(owner.namespace).Get(name)),
      owner,
    ),
    foreignObject(
      "RoleBinding",
      await get(() => K8s(kind.RoleBinding).InNamespace(owner.namespace).Get(name)),
      owner,
    ),
  ].filter((c): c is string => !!c);
  if (taken.length) {
    conflicts.push(...taken); // looked at again on the next reconcile
    return;
  }
  await K8s(kind.ServiceAccount).Apply(access.serviceAccount as kind.ServiceAccount, {
    force: true,
  });
  await K8s(kind.Role).Apply(access.role as kind.Role, { force: true });
  await K8s(kind.RoleBinding).Apply(access.roleBinding as kind.RoleBinding, { force: true });
  ctx.accessApplied.add(owner.uid);
}

/** The device's config Secret as it is: the last good storage in it, unless someone else owns it. */
async function readConfigSecret(owner: OwnerDevice, conflicts: string[]) {
  const name = deviceConfigSecretName(owner.name);
  const existing = await getOrUndefined(name, () =>
    K8s(kind.Secret).InNamespace(owner.namespace).Get(name),
  );
  // Someone else's Secret of that name is neither read as the last good config nor written.
  const foreign = foreignObject("Secret", existing, owner);
  if (foreign) conflicts.push(foreign);
  const data = foreign ? undefined : existing?.data?.[DEVICE_CONFIG_KEY];
  const previous = data
    ? parseDeviceConfigJson(Buffer.from(data, "base64").toString("utf8"))
    : undefined;
  return { name, foreign: !!foreign, data, lastGood: previous?.ok ? previous.value.storage : null };
}

/** The device's config from the storage and the valid workloads that select it. */
async function assembleFor(device: EdgeDevice, storage: Storage | null) {
  const { namespace, name, labels } = device.metadata as {
    namespace: string;
    name: string;
    labels?: Record<string, string>;
  };
  const ref = { namespace, name, labels };
  const workloads = (await K8s(EdgeWorkload).InNamespace(namespace).Get()).items;
  // A workload stored before the webhook (or while the module was down) may be invalid: it is
  // left out of this device's config, so the other workloads and the storage still reach it.
  const invalid = workloads.filter(w => workloadSelects(w, ref) && workloadProblems(w).length);
  const valid = workloads.filter(w => !invalid.includes(w));
  return { config: assembleDeviceConfig(ref, storage, valid), invalid };
}

/** The module's status fields and Events, written only when they changed. */
async function writeStatus(device: EdgeDevice, findings: Findings): Promise<void> {
  const { namespace, name } = device.metadata as { namespace: string; name: string };
  const old = device.status ?? {};
  const status = moduleStatus(findings, old, device.metadata?.generation, new Date().toISOString());
  if (sameModuleStatus(status, old)) return;
  // A merge patch of the module's own fields: the agent's status.dataUpload stays as it is.
  await K8s(EdgeDevice).PatchStatus({ metadata: { name, namespace }, status } as EdgeDevice);
  for (const event of deviceEvents(old, status)) await createEvent(device, "EdgeDevice", event);
  for (const { workload, event } of workloadEvents(
    findings.invalid,
    old.conditions,
    status.conditions,
  ))
    await createEvent(workload, "EdgeWorkload", event);
}

/**
 * One device: access objects, storage inputs, config Secret, status. Returns when to look again;
 * an error throws and the queue retries.
 */
export async function reconcileDevice(
  key: string,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  const [namespace, name] = key.split("/");
  const device = await getOrUndefined(name, () => K8s(EdgeDevice).InNamespace(namespace).Get(name));
  if (!device || device.metadata?.deletionTimestamp) {
    ctx.references.forget(key); // its Secret, ServiceAccount, Role and RoleBinding are garbage-collected
    return {};
  }
  const owner: OwnerDevice = { namespace, name, uid: device.metadata!.uid! };
  const conflicts: string[] = [];
  if (!ctx.accessApplied.has(owner.uid)) await applyAccess(owner, ctx, conflicts);

  const { obc, external } = await readStorageInputs(device, owner, ctx, conflicts);
  const obcName = obc.state === "missing" || obc.state === "present" ? obc.name : undefined;
  const s3 = device.spec?.storage?.s3;
  ctx.references.record(key, namespace, {
    configMaps: [s3?.configMapName, obcName].filter((n): n is string => !!n),
    secrets: [s3?.secretName, obcName].filter((n): n is string => !!n),
  });
  const resolution = resolveStorage({ namespace, obc, external });

  // A failure keeps the storage of the last good config; workloads still follow.
  const current = await readConfigSecret(owner, conflicts);
  const storage = resolution.problem ? current.lastGood : (resolution.storage ?? null);
  const { config, invalid } = await assembleFor(device, storage);
  const secret = configSecret(owner, config);
  if (!current.foreign && current.data !== secret.data[DEVICE_CONFIG_KEY])
    await K8s(kind.Secret).Apply(secret as kind.Secret, { force: true });

  await writeStatus(device, {
    resolution,
    storage,
    lastGood: current.lastGood,
    conflicts,
    invalid,
    configSecret: current.name,
    obcName,
  });
  // Claims have no watch here: look again until it binds. A bound claim that cannot be used
  // (an in-cluster host, a bad key) waits for the resync or for its ConfigMap or Secret to change.
  const binding = obc.state === "missing" || (obc.state === "present" && obc.phase !== "Bound");
  return binding ? { requeueAfterMs: 5_000 } : {};
}

async function createEvent(
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
  await K8s(kind.CoreEvent).Create({
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
    firstTimestamp: time as unknown as Date,
    lastTimestamp: time as unknown as Date,
    count: 1,
    source: { component: "edge-data-upload" },
    reportingComponent: "edge-data-upload",
    reportingInstance: hostname(),
  } as kind.CoreEvent);
}

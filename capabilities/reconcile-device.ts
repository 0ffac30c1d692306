/**
 * Reconciles one device: reads what its config is built from, lets the pure functions decide,
 * and writes only what changed (its config Secret, access objects, claim, status, Events).
 * Any error throws: the work queue retries with backoff.
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
import { mergeConditions, sameModuleStatus, type ConditionInput } from "./conditions";
import {
  bucketClaim,
  configSecret,
  deviceAccess,
  foreignObject,
  type OwnerDevice,
} from "./device-resources";
import { EdgeDevice, type Condition, type StatusStorage } from "./generated/edgedevice-v1alpha1";
import { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import { ObjectBucketClaim } from "./generated/objectbucketclaim-v1alpha1";
import { ApiMissing, getOrUndefined } from "./kube-errors";
import type { References } from "./references";
import { wantsObc, type ModuleSettings } from "./settings";
import { workloadSelects } from "./selector";
import { resolveStorage, type Data, type ObcState } from "./storage";
import { workloadProblems } from "./workload-validation";

export interface ReconcileContext {
  settings: ModuleSettings;
  references: References;
  /** Devices whose access objects this process already applied (by uid). */
  accessApplied: Set<string>;
  /** Asks for another reconcile of the device later (an OBC not bound yet). */
  requeue: (key: string, delayMs: number) => void;
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

function nameConflict(conflicts: string[]): ConditionInput {
  const [exist, be, them] =
    conflicts.length === 1 ? ["exists", "is", "it"] : ["exist", "are", "them"];
  return {
    type: "Ready",
    status: "False",
    reason: "NameConflict",
    message: `${conflicts.join(", ")} already ${exist} and ${be} not managed by the module for this device: rename or delete ${them}; the module leaves ${them} alone`,
  };
}

function describeStorage(storage: Storage | null | undefined): string {
  return storage ? `${storage.kind} bucket ${storage.bucket} at ${storage.endpoint}` : "no storage";
}

export async function reconcileDevice(key: string, ctx: ReconcileContext): Promise<void> {
  const [namespace, name] = key.split("/");
  const device = await getOrUndefined(name, () => K8s(EdgeDevice).InNamespace(namespace).Get(name));
  if (!device || device.metadata?.deletionTimestamp) {
    ctx.references.forget(key); // its Secret, ServiceAccount, Role and RoleBinding are garbage-collected
    return;
  }
  const owner: OwnerDevice = { namespace, name, uid: device.metadata!.uid! };

  const conflicts: string[] = [];
  if (!ctx.accessApplied.has(owner.uid)) await applyAccess(owner, ctx, conflicts);

  const s3 = device.spec?.storage?.s3;
  const obc = await obcState(device, owner, ctx, conflicts);
  const external =
    s3?.configMapName || s3?.secretName
      ? {
          configMapName: s3.configMapName,
          secretName: s3.secretName,
          configMap: s3.configMapName
            ? await readConfigMap(namespace, s3.configMapName)
            : undefined,
          secret: s3.secretName ? await readSecret(namespace, s3.secretName) : undefined,
        }
      : undefined;
  const obcName = obc.state === "missing" || obc.state === "present" ? obc.name : undefined;
  ctx.references.record(key, namespace, {
    configMaps: [s3?.configMapName, obcName].filter((n): n is string => !!n),
    secrets: [s3?.secretName, obcName].filter((n): n is string => !!n),
  });

  const resolution = resolveStorage({ namespace, obc, external });
  if (resolution.obc && !resolution.obc.ready && obc.state !== "api-missing") {
    ctx.requeue(key, 5_000); // claims have no watch here: look again until it binds
  }

  // A failure keeps the storage of the last good config; workloads still follow.
  const secretName = deviceConfigSecretName(name);
  const existing = await getOrUndefined(secretName, () =>
    K8s(kind.Secret).InNamespace(namespace).Get(secretName),
  );
  // Someone else's Secret of that name is neither read as the last good config nor written.
  const foreignSecret = foreignObject("Secret", existing, owner);
  const existingText =
    existing?.data?.[DEVICE_CONFIG_KEY] && !foreignSecret
      ? Buffer.from(existing.data[DEVICE_CONFIG_KEY], "base64").toString("utf8")
      : undefined;
  const previous = existingText ? parseDeviceConfigJson(existingText) : undefined;
  const lastGood = previous?.ok ? previous.value.storage : null;
  const storage = resolution.problem ? lastGood : (resolution.storage ?? null);

  const ref = { namespace, name, labels: device.metadata?.labels };
  const workloads = (await K8s(EdgeWorkload).InNamespace(namespace).Get()).items;
  // A workload stored before the webhook (or while the module was down) may be invalid: it is
  // left out of this device's config, so the other workloads and the storage still reach it.
  const invalid = workloads.filter(w => workloadSelects(w, ref) && workloadProblems(w).length);
  const config = assembleDeviceConfig(
    ref,
    storage,
    workloads.filter(w => !invalid.includes(w)),
  );
  const secret = configSecret(owner, config);
  if (foreignSecret) conflicts.push(foreignSecret);
  else if (existing?.data?.[DEVICE_CONFIG_KEY] !== secret.data[DEVICE_CONFIG_KEY]) {
    await K8s(kind.Secret).Apply(secret as kind.Secret, { force: true });
  }

  const conditions: ConditionInput[] = [];
  if (conflicts.length) {
    conditions.push(nameConflict(conflicts));
  } else if (resolution.problem) {
    const kept = lastGood
      ? ` The device keeps its last good config (${describeStorage(lastGood)}).`
      : " The device has no storage until this is fixed.";
    conditions.push({
      type: "Ready",
      status: "False",
      reason: resolution.problem.reason,
      message: `${resolution.problem.message}.${kept}`,
    });
  } else if (storage) {
    const note =
      resolution.obc && !resolution.obc.ready
        ? ` Meanwhile: ${resolution.obc.message}; the device moves to the claim's bucket once it is bound.`
        : "";
    conditions.push({
      type: "Ready",
      status: "True",
      reason: storage.kind === "ocs" ? "ObcBucket" : "ExternalBucket",
      message: `Uploads go to ${describeStorage(storage)}.${note}`,
    });
  } else {
    conditions.push({
      type: "Ready",
      status: "False",
      reason: "NoStorage",
      message:
        "spec.storage.s3 names no ConfigMap and Secret and no ObjectBucketClaim is wanted: the device has nowhere to upload",
    });
  }
  if (invalid.length) conditions.push(invalidWorkloads(invalid));
  if (resolution.obc) {
    conditions.push({
      type: "BucketClaimReady",
      status: resolution.obc.ready ? "True" : "False",
      reason: resolution.obc.reason,
      message: resolution.obc.message,
    });
  }

  const now = new Date().toISOString();
  const old = device.status ?? {};
  const statusStorage: StatusStorage = {
    kind: storage?.kind ?? "none",
    ...(storage ? { bucket: storage.bucket, endpoint: storage.endpoint } : {}),
    configSecret: secretName,
  };
  const status = {
    observedGeneration: device.metadata?.generation,
    conditions: mergeConditions(old.conditions, conditions, device.metadata?.generation, now),
    storage: statusStorage,
    ...(obcName ? { dataObc: obcName } : {}),
  };
  if (!sameModuleStatus(status, old)) {
    // A merge patch of the module's own fields: the agent's status.dataUpload stays as it is.
    await K8s(EdgeDevice).PatchStatus({ metadata: { name, namespace }, status } as EdgeDevice);
    await recordEvents(device, old, status);
    await recordWorkloadEvents(invalid, old.conditions, status.conditions);
  }
}

async function recordEvents(
  device: EdgeDevice,
  old: { conditions?: Condition[]; storage?: StatusStorage },
  now: { conditions: Condition[]; storage: StatusStorage },
): Promise<void> {
  const events: { type: "Normal" | "Warning"; reason: string; message: string }[] = [];
  const was = old.storage;
  if (
    was?.kind !== now.storage.kind ||
    was?.bucket !== now.storage.bucket ||
    was?.endpoint !== now.storage.endpoint
  ) {
    events.push({
      type: "Normal",
      reason: "StorageChanged",
      message: `Device config now uploads to ${now.storage.kind === "none" ? "no storage" : `${now.storage.kind} bucket ${now.storage.bucket} at ${now.storage.endpoint}`}`,
    });
  }
  const ready = now.conditions.find(c => c.type === "Ready")!;
  const oldReady = old.conditions?.find(c => c.type === "Ready");
  if (
    ready.status === "False" &&
    (oldReady?.reason !== ready.reason || oldReady?.status !== "False")
  ) {
    events.push({ type: "Warning", reason: ready.reason, message: ready.message });
  }
  for (const event of events) await createEvent(device, "EdgeDevice", event);
}

interface EventInput {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
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

/** The condition a device gets while invalid workloads select it. */
function invalidWorkloads(invalid: EdgeWorkload[]): ConditionInput {
  const each = invalid.map(
    w =>
      `EdgeWorkload ${w.metadata?.namespace}/${w.metadata?.name}: ${workloadProblems(w).join("; ")}`,
  );
  return {
    type: "WorkloadsValid",
    status: "False",
    reason: "InvalidWorkload",
    message: `${each.join(". ")}. Left out of this device's config until fixed; the other workloads and the storage still apply`,
  };
}

/** A Warning on each invalid workload, when the device's WorkloadsValid condition changes. */
async function recordWorkloadEvents(
  invalid: EdgeWorkload[],
  old: Condition[] | undefined,
  now: Condition[],
): Promise<void> {
  const was = old?.find(c => c.type === "WorkloadsValid")?.message;
  const is = now.find(c => c.type === "WorkloadsValid")?.message;
  if (!is || was === is) return;
  for (const w of invalid)
    await createEvent(w, "EdgeWorkload", {
      type: "Warning",
      reason: "InvalidWorkload",
      message: `${workloadProblems(w).join("; ")}: left out of the configs of the devices it selects until fixed`,
    });
}

/**
 * What a device's status and Events say after a reconcile, decided from what the reconcile
 * found. Pure: reconcile-device.ts reads and writes, this decides.
 */
import type { Storage } from "../agent/config/device-config";
import { mergeConditions, type ConditionInput } from "./conditions";
import type { Condition, StatusStorage } from "./generated/edgedevice-v1alpha1";
import type { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import type { StorageResolution } from "./storage";
import type { Collision } from "./key-space";

/** A workload left out of a device's config, and why (each problem names its field). */
export interface RefusedWorkload {
  workload: EdgeWorkload;
  problems: string[];
}

export interface EventInput {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface Findings {
  resolution: StorageResolution;
  /** The storage written to the config: the resolution's, or the last good one on a problem. */
  storage: Storage | null;
  lastGood: Storage | null;
  /** Objects with the module's names that it does not own. */
  conflicts: string[];
  /** Workloads selecting the device left out of its config: invalid, or overlapping another's targets. */
  invalid: RefusedWorkload[];
  /** The key prefix in the config; and why spec.storage.keyPrefix could not be used, if so. */
  keyPrefix: { template?: string; prefix: string; problem?: string };
  /**
   * Whether other devices write to the same bucket; how many can overwrite this one's keys, and
   * the first of them by name.
   */
  shared: { sharing: boolean; colliding: number; collisions: Collision[] };
  configSecret: string;
  obcName?: string;
  /** What the device's agent reports that conditions follow (its status.dataUpload). */
  agent: AgentFindings;
}

export interface AgentFindings {
  /** The agent has reported a status at all. */
  reporting: boolean;
  /** A data path of the device's config has a size cap (retention.maxSize). */
  capped: boolean;
  /** spec.dataUpload.stallAfterSeconds. */
  stallAfterSeconds?: number;
  diskPressure?: string;
  stalled?: string;
}

export interface ModuleStatusFields {
  observedGeneration?: number;
  conditions: Condition[];
  storage: StatusStorage;
  dataObc?: string;
}

export function describeStorage(storage: Storage | null | undefined): string {
  return storage ? `${storage.kind} bucket ${storage.bucket} at ${storage.endpoint}` : "no storage";
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

function ready(f: Findings): ConditionInput {
  if (f.conflicts.length) return nameConflict(f.conflicts);
  const { resolution, storage, lastGood } = f;
  if (resolution.problem) {
    const kept = lastGood
      ? ` The device keeps its last good config (${describeStorage(lastGood)}).`
      : " The device has no storage until this is fixed.";
    return {
      type: "Ready",
      status: "False",
      reason: resolution.problem.reason,
      message: `${resolution.problem.message}.${kept}`,
    };
  }
  if (storage) {
    const note =
      resolution.obc && !resolution.obc.ready
        ? ` Meanwhile: ${resolution.obc.message}; the device moves to the claim's bucket once it is bound.`
        : "";
    return {
      type: "Ready",
      status: "True",
      reason: storage.kind === "ocs" ? "ObcBucket" : "ExternalBucket",
      message: `Uploads go to ${describeStorage(storage)}.${note}`,
    };
  }
  return {
    type: "Ready",
    status: "False",
    reason: "NoStorage",
    message:
      "spec.storage.s3 names no ConfigMap and Secret and no ObjectBucketClaim is wanted: the device has nowhere to upload",
  };
}

/** The condition a device gets while invalid workloads select it. */
function invalidWorkloads(invalid: RefusedWorkload[]): ConditionInput {
  const each = invalid.map(
    ({ workload: w, problems }) =>
      `EdgeWorkload ${w.metadata?.namespace}/${w.metadata?.name}: ${problems.join("; ")}`,
  );
  return {
    type: "WorkloadsValid",
    status: "False",
    reason: "InvalidWorkload",
    message: `${each.join(". ")}. Left out of this device's config until fixed; the other workloads and the storage still apply`,
  };
}

/** Present once spec.storage.keyPrefix is set: the prefix in use, or why the template is not. */
function keyPrefixCondition(k: Findings["keyPrefix"]): ConditionInput | undefined {
  if (!k.template) return undefined;
  if (k.problem)
    return {
      type: "KeyPrefixValid",
      status: "False",
      reason: "InvalidKeyPrefix",
      message: `${k.problem}. The device keeps ${k.prefix ? `the key prefix "${k.prefix}/"` : "keys without a prefix"} until this is fixed`,
    };
  return {
    type: "KeyPrefixValid",
    status: "True",
    reason: "KeyPrefixExpanded",
    message: `Object keys start with "${k.prefix}/"`,
  };
}

/** Present while other devices upload to the same bucket: True when their keys can collide. */
function collisionCondition(s: Findings["shared"]): ConditionInput | undefined {
  if (!s.sharing) return undefined;
  if (!s.colliding)
    return {
      type: "KeysCollide",
      status: "False",
      reason: "DistinctPrefixes",
      message: "Other devices upload to this bucket; their key prefixes keep them apart",
    };
  // Neither a count nor the prefixes: a growing fleet, or an edit of a target that all its
  // devices share, would change the message, and patch every device's status each time.
  const each = s.collisions.map(c => `EdgeDevice ${c.device}`);
  const more = s.colliding > s.collisions.length ? " and other devices" : "";
  return {
    type: "KeysCollide",
    status: "True",
    reason: "SharedBucketOverlap",
    message: `This device and ${each.join(", ")}${more} upload to this bucket under overlapping key prefixes: their objects can overwrite each other. Set spec.storage.keyPrefix, e.g. {namespace}/{device}`,
  };
}

/** Present while a data path has a size cap: True while the agent reports the cap exceeded. */
function diskPressureCondition(a: AgentFindings): ConditionInput | undefined {
  if (!a.capped) return undefined;
  if (!a.reporting) return notReported("DiskPressure");
  if (a.diskPressure)
    return { type: "DiskPressure", status: "True", reason: "OverCap", message: a.diskPressure };
  return {
    type: "DiskPressure",
    status: "False",
    reason: "WithinCap",
    message: "Every data path with a size cap is within it",
  };
}

/** Present while spec.dataUpload.stallAfterSeconds is set: True while a file waits longer. */
function stallCondition(a: AgentFindings): ConditionInput | undefined {
  if (!a.stallAfterSeconds) return undefined;
  if (!a.reporting) return notReported("UploadStalled");
  if (a.stalled)
    return { type: "UploadStalled", status: "True", reason: "FilesWaiting", message: a.stalled };
  return {
    type: "UploadStalled",
    status: "False",
    reason: "Flowing",
    message: `No file has waited longer than ${a.stallAfterSeconds} s`,
  };
}

/** The reason of a condition that waits for the agent's first report (see device-changes.ts). */
export const AGENT_NOT_REPORTING = "AgentNotReporting";

const notReported = (type: string): ConditionInput => ({
  type,
  status: "Unknown",
  reason: AGENT_NOT_REPORTING,
  message: "The device's agent has not reported a status yet",
});

export function deviceConditions(f: Findings): ConditionInput[] {
  const conditions = [ready(f)];
  if (f.invalid.length) conditions.push(invalidWorkloads(f.invalid));
  const more = [
    keyPrefixCondition(f.keyPrefix),
    collisionCondition(f.shared),
    diskPressureCondition(f.agent),
    stallCondition(f.agent),
  ];
  for (const c of more) if (c) conditions.push(c);
  const obc = f.resolution.obc;
  if (obc)
    conditions.push({
      type: "BucketClaimReady",
      status: obc.ready ? "True" : "False",
      reason: obc.reason,
      message: obc.message,
    });
  return conditions;
}

export function moduleStatus(
  f: Findings,
  old: { conditions?: Condition[] },
  generation: number | undefined,
  now: string,
): ModuleStatusFields {
  const { storage } = f;
  return {
    observedGeneration: generation,
    conditions: mergeConditions(old.conditions, deviceConditions(f), generation, now),
    storage: {
      kind: storage?.kind ?? "none",
      ...(storage ? { bucket: storage.bucket, endpoint: storage.endpoint } : {}),
      configSecret: f.configSecret,
    },
    ...(f.obcName ? { dataObc: f.obcName } : {}),
  };
}

/** Events on the device: where uploads go now, and a Warning when it stops being Ready. */
export function deviceEvents(
  old: { conditions?: Condition[]; storage?: StatusStorage },
  now: ModuleStatusFields,
): EventInput[] {
  const events: EventInput[] = [];
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
  const isReady = now.conditions.find(c => c.type === "Ready")!;
  const wasReady = old.conditions?.find(c => c.type === "Ready");
  if (
    isReady.status === "False" &&
    (wasReady?.reason !== isReady.reason || wasReady?.status !== "False")
  ) {
    events.push({ type: "Warning", reason: isReady.reason, message: isReady.message });
  }
  for (const type of ["KeysCollide", "DiskPressure", "UploadStalled"]) {
    const is = now.conditions.find(c => c.type === type);
    const was = old.conditions?.find(c => c.type === type);
    if (is?.status === "True" && was?.status !== "True")
      events.push({ type: "Warning", reason: is.reason, message: is.message });
  }
  return events;
}

/** A Warning for each invalid workload, when the device's WorkloadsValid condition changes. */
export function workloadEvents(
  invalid: RefusedWorkload[],
  old: Condition[] | undefined,
  now: Condition[],
): { workload: EdgeWorkload; event: EventInput }[] {
  const was = old?.find(c => c.type === "WorkloadsValid")?.message;
  const is = now.find(c => c.type === "WorkloadsValid")?.message;
  if (!is || was === is) return [];
  return invalid.map(({ workload, problems }) => ({
    workload,
    event: {
      type: "Warning",
      reason: "InvalidWorkload",
      message: `${problems.join("; ")}: left out of the configs of the devices it selects until fixed`,
    },
  }));
}

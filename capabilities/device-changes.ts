/**
 * Which devices a change concerns, from the object before and after it (the cluster cache's
 * events). Only a change in what the module reads from a device reconciles it: its spec (the
 * generation), its labels, its deletion, and what the agent reports that conditions follow
 * (disk pressure, a stall; and its first report, while a condition waits for one). The agent's
 * other status fields (times, counts) and the module's own status writes change none of these.
 * A workload change reconciles the devices it selects before or after the edit, and no other.
 * Pure.
 */
import type { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import { DEVICE_ANNOTATION, DEVICE_LABEL } from "./device-resources";
import { AGENT_NOT_REPORTING } from "./device-status";
import { workloadSelects } from "./selector";

export interface DeviceMeta {
  metadata?: {
    name?: string;
    namespace?: string;
    generation?: number;
    labels?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  status?: {
    conditions?: { reason?: string }[];
    dataUpload?: { diskPressure?: string | null; stalled?: string | null } | null;
  };
}

const signature = (device: DeviceMeta) => {
  const meta = device.metadata ?? {};
  const labels = Object.entries(meta.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  // What the agent reports that a condition follows (DiskPressure, UploadStalled); its first
  // report only while a condition waits for it (so other devices' first reports cost nothing).
  const agent = device.status?.dataUpload;
  const waiting = device.status?.conditions?.some(c => c.reason === AGENT_NOT_REPORTING);
  return JSON.stringify([
    meta.generation,
    labels,
    !!meta.deletionTimestamp,
    waiting ? !!agent : null,
    agent?.diskPressure ?? null,
    agent?.stalled ?? null,
  ]);
};

/** True when a device appears or goes, and when what the module reads from it changed. */
export function deviceNeedsReconcile(before?: DeviceMeta, now?: DeviceMeta): boolean {
  if (!before || !now) return true;
  return signature(before) !== signature(now);
}

const selectedBy = (workload: EdgeWorkload | undefined, device: DeviceMeta) =>
  !!workload &&
  workloadSelects(workload, {
    name: device.metadata?.name ?? "",
    labels: device.metadata?.labels,
  });

/** Keys (namespace/name) of the devices a workload selects before or after a change. */
export function devicesForWorkload(
  before: EdgeWorkload | undefined,
  now: EdgeWorkload | undefined,
  devicesInNamespace: Iterable<DeviceMeta>,
): string[] {
  const keys: string[] = [];
  for (const device of devicesInNamespace)
    if (selectedBy(before, device) || selectedBy(now, device))
      keys.push(`${device.metadata?.namespace}/${device.metadata?.name}`);
  return keys;
}

/**
 * The device an object the module made for it belongs to, as a key: its full name from the
 * annotation, else its device label (objects written before the annotation; names up to 63).
 */
export function ownerDeviceKey(meta?: {
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}): string | undefined {
  const device = meta?.annotations?.[DEVICE_ANNOTATION] ?? meta?.labels?.[DEVICE_LABEL];
  return device && meta?.namespace ? `${meta.namespace}/${device}` : undefined;
}

/**
 * The device config the module writes for one device: its storage and every data path of every
 * workload that selects it. Pure and deterministic (sorted), so an unchanged input gives a
 * byte-identical Secret and the agent sees no change.
 */
import {
  DEVICE_CONFIG_VERSION,
  DEFAULT_SYNC_INTERVAL_SECONDS,
  DEFAULT_ABORT_UPLOADS_AFTER_HOURS,
  parseDeviceConfig,
  type DeviceConfig,
  type Storage,
} from "../agent/config/device-config";
import { parseQuantity } from "../agent/config/quantity";
import type { Bandwidth as SpecBandwidth } from "./generated/edgedevice-v1alpha1";
import type { EdgeWorkload, Retention as SpecRetention } from "./generated/edgeworkload-v1alpha1";
import { workloadSelects } from "./selector";

export interface DeviceRef {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
}

/** The device's own upload settings: its expanded key prefix and spec.dataUpload. */
export interface DeviceUpload {
  keyPrefix: string;
  resumeUploads?: boolean;
  abortUploadsAfterHours?: number;
  bandwidth?: SpecBandwidth;
  stallAfterSeconds?: number;
}

type SpecPath = NonNullable<NonNullable<EdgeWorkload["spec"]>["data"]>["paths"] extends
  | (infer P)[]
  | undefined
  ? P
  : never;

/** A data path as the config holds it: filters and the quiet period only when set. */
function configPath(p: SpecPath) {
  return {
    source: p.source,
    target: p.target,
    ...(p.include?.length ? { include: p.include } : {}),
    ...(p.exclude?.length ? { exclude: p.exclude } : {}),
    ...(p.quietSeconds ? { quietSeconds: p.quietSeconds } : {}),
    ...(p.priority ? { priority: p.priority } : {}),
    ...(p.order ? { order: p.order === "OldestFirst" ? "oldest-first" : "newest-first" } : {}),
    ...(p.compression === "gzip" ? { compression: "gzip" } : {}),
    ...(p.retention ? { retention: configRetention(p.retention) } : {}),
  };
}

/** spec retention as the config holds it: the size cap in bytes (a quantity the schema checked). */
function configRetention(r: SpecRetention) {
  return {
    ...(r.deleteAfterUpload ? { deleteAfterUpload: true } : {}),
    ...(r.deleteAfterSeconds ? { deleteAfterSeconds: r.deleteAfterSeconds } : {}),
    ...(r.maxSize !== undefined ? { maxBytes: parseQuantity(r.maxSize) ?? -1 } : {}),
  };
}

/** The timetable as the config holds it: rates in bytes per second, 0 to hold, none for no cap. */
function configBandwidth(b: SpecBandwidth) {
  return {
    timeZone: b.timeZone,
    ...(b.jitterSeconds !== undefined ? { jitterSeconds: b.jitterSeconds } : {}),
    windows: [...b.schedule]
      .sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0))
      .map(w => ({
        start: w.start,
        ...(w.rate === "unlimited"
          ? {}
          : { bytesPerSecond: w.rate === "off" ? 0 : (parseQuantity(w.rate) ?? -1) }),
      })),
  };
}

export function assembleDeviceConfig(
  device: DeviceRef,
  storage: Storage | null,
  workloads: EdgeWorkload[],
  upload: DeviceUpload = { keyPrefix: "" },
): DeviceConfig {
  const selected = workloads
    .filter(w => w.metadata?.namespace === device.namespace && workloadSelects(w, device))
    .filter(w => (w.spec?.data?.paths ?? []).length > 0)
    .map(w => ({ name: w.metadata!.name!, paths: (w.spec!.data!.paths ?? []).map(configPath) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const config = {
    version: DEVICE_CONFIG_VERSION,
    device: { namespace: device.namespace, name: device.name },
    storage,
    workloads: selected,
    syncIntervalSeconds: DEFAULT_SYNC_INTERVAL_SECONDS,
    keyPrefix: upload.keyPrefix,
    resumeUploads: upload.resumeUploads ?? false,
    abortUploadsAfterHours: upload.abortUploadsAfterHours ?? DEFAULT_ABORT_UPLOADS_AFTER_HOURS,
    ...(upload.bandwidth ? { bandwidth: configBandwidth(upload.bandwidth) } : {}),
    ...(upload.stallAfterSeconds ? { stallAfterSeconds: upload.stallAfterSeconds } : {}),
  };
  // The same schema the agent applies: the module never writes a config the agent would refuse.
  const parsed = parseDeviceConfig(config);
  if (!parsed.ok) throw new Error(`assembled device config is invalid: ${parsed.error}`);
  return parsed.value;
}

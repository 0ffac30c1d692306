/**
 * The device config the module writes for one device: its storage and every data path of every
 * workload that selects it. Pure and deterministic (sorted), so an unchanged input gives a
 * byte-identical Secret and the agent sees no change.
 */
import {
  DEVICE_CONFIG_VERSION,
  DEFAULT_SYNC_INTERVAL_SECONDS,
  parseDeviceConfig,
  type DeviceConfig,
  type Storage,
} from "../agent/config/device-config";
import type { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import { workloadSelects } from "./selector";

export interface DeviceRef {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
}

export function assembleDeviceConfig(
  device: DeviceRef,
  storage: Storage | null,
  workloads: EdgeWorkload[],
): DeviceConfig {
  const selected = workloads
    .filter(w => w.metadata?.namespace === device.namespace && workloadSelects(w, device))
    .filter(w => (w.spec?.data?.paths ?? []).length > 0)
    .map(w => ({
      name: w.metadata!.name!,
      paths: (w.spec!.data!.paths ?? []).map(p => ({ source: p.source, target: p.target })),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const config = {
    version: DEVICE_CONFIG_VERSION,
    device: { namespace: device.namespace, name: device.name },
    storage,
    workloads: selected,
    syncIntervalSeconds: DEFAULT_SYNC_INTERVAL_SECONDS,
  };
  // The same schema the agent applies: the module never writes a config the agent would refuse.
  const parsed = parseDeviceConfig(config);
  if (!parsed.ok) throw new Error(`assembled device config is invalid: ${parsed.error}`);
  return parsed.value;
}

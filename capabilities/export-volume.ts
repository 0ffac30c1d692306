/**
 * The /export volume every EdgeWorkload gets: a hostPath under the device's volumes directory,
 * one per workload, mounted at /export in every container. Pure and idempotent: injecting into
 * an already injected spec gives the same spec.
 */
import { createHash } from "node:crypto";

export const EXPORT_MOUNT_PATH = "/export";
export const DEVICE_VOLUMES_DIR = "/var/local/yggdrasil/device/volumes";

export interface VolumeMount {
  name: string;
  mountPath: string;
  [key: string]: unknown;
}
export interface Container {
  name: string;
  volumeMounts?: VolumeMount[];
  [key: string]: unknown;
}
export interface Volume {
  name: string;
  [key: string]: unknown;
}
export interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  [key: string]: unknown;
}

/** `export-<workload>`, shortened with a hash when that would not be a valid volume name (63). */
export function exportVolumeName(workload: string): string {
  const name = `export-${workload}`;
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(workload).digest("hex").slice(0, 8);
  return `export-${workload.slice(0, 46).replace(/[-.]+$/, "")}-${hash}`;
}

export function exportVolume(workload: string): Volume {
  return {
    name: exportVolumeName(workload),
    hostPath: { path: `${DEVICE_VOLUMES_DIR}/${workload}`, type: "DirectoryOrCreate" },
  };
}

/** True for the mount this module adds. */
export function isInjectedMount(workload: string, mount: VolumeMount): boolean {
  return mount.name === exportVolumeName(workload) && mount.mountPath === EXPORT_MOUNT_PATH;
}

function withMount(workload: string, container: Container): Container {
  const name = exportVolumeName(workload);
  const others = (container.volumeMounts ?? []).filter(m => m.name !== name);
  return { ...container, volumeMounts: [...others, { name, mountPath: EXPORT_MOUNT_PATH }] };
}

export function injectExport(workload: string, spec: PodSpec): PodSpec {
  const volume = exportVolume(workload);
  const result: PodSpec = {
    ...spec,
    volumes: [...(spec.volumes ?? []).filter(v => v.name !== volume.name), volume],
    containers: (spec.containers ?? []).map(c => withMount(workload, c)),
  };
  if (spec.initContainers)
    result.initContainers = spec.initContainers.map(c => withMount(workload, c));
  return result;
}

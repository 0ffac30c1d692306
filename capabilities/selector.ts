/** Which devices a workload runs on: spec.device by name, else spec.deviceSelector. Pure. */
import type { DeviceSelector, EdgeWorkload } from "./generated/edgeworkload-v1alpha1";

export function labelsMatch(selector: DeviceSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    if (operator === "In" && !(has && values.includes(labels[key]))) return false;
    if (operator === "NotIn" && has && values.includes(labels[key])) return false;
    if (operator === "Exists" && !has) return false;
    if (operator === "DoesNotExist" && has) return false;
  }
  return true;
}

export function workloadSelects(
  workload: EdgeWorkload,
  device: { name: string; labels?: Record<string, string> },
): boolean {
  if (workload.spec?.device) return workload.spec.device === device.name;
  if (workload.spec?.deviceSelector)
    return labelsMatch(workload.spec.deviceSelector, device.labels ?? {});
  return false;
}

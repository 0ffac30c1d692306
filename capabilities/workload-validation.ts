/**
 * What admission refuses in an EdgeWorkload, each problem naming its field. Pure.
 * Runs after injection (mutating admission comes first), so the module's own mount is allowed.
 */
import {
  globProblem,
  globsProblem,
  relativePathProblem,
  targetProblem,
} from "../agent/config/device-config";
import { normalizeTarget } from "../agent/sync/keys";
import { parseQuantity } from "../agent/config/quantity";
import type { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import { EXPORT_MOUNT_PATH, isInjectedMount, type PodSpec } from "./export-volume";

function underExport(path: string): boolean {
  const normalized = path.replace(/\/+$/, "") || "/";
  return normalized === EXPORT_MOUNT_PATH || normalized.startsWith(`${EXPORT_MOUNT_PATH}/`);
}

export function workloadProblems(workload: EdgeWorkload): string[] {
  const name = workload.metadata?.name ?? "";
  const spec = (workload.spec?.pod?.spec ?? {}) as PodSpec;
  const problems: string[] = [];

  for (const list of ["containers", "initContainers"] as const) {
    (spec[list] ?? []).forEach((container, i) => {
      (container.volumeMounts ?? []).forEach((mount, j) => {
        if (underExport(mount.mountPath) && !isInjectedMount(name, mount)) {
          problems.push(
            `spec.pod.spec.${list}[${i}].volumeMounts[${j}].mountPath: "${mount.mountPath}" is reserved for the data upload volume, which is added automatically; remove this mount`,
          );
        }
      });
    });
  }

  const paths = workload.spec?.data?.paths ?? [];
  const targets = new Map<string, number>();
  paths.forEach((path, i) => {
    for (const [field, problemOf] of [
      ["source", relativePathProblem],
      ["target", targetProblem],
    ] as const) {
      const problem = problemOf(path[field] ?? "");
      if (problem) problems.push(`spec.data.paths[${i}].${field}: ${problem}`);
    }
    for (const list of ["include", "exclude"] as const)
      (path[list] ?? []).forEach((glob, j) => {
        const problem = globProblem(glob);
        if (problem) problems.push(`spec.data.paths[${i}].${list}[${j}]: ${problem}`);
      });
    const maxSize = path.retention?.maxSize;
    if (maxSize !== undefined && !((parseQuantity(maxSize) ?? 0) >= 1))
      problems.push(
        `spec.data.paths[${i}].retention.maxSize: "${maxSize}" must be a size of at least 1 byte and below 8Pi`,
      );
    const tooMany = globsProblem([...(path.include ?? []), ...(path.exclude ?? [])]);
    if (tooMany) problems.push(`spec.data.paths[${i}].include, exclude: ${tooMany}`);
    const target = normalizeTarget(path.target ?? "");
    const first = targets.get(target);
    if (first !== undefined) {
      problems.push(
        `spec.data.paths[${i}].target: "${path.target}" is already the target of spec.data.paths[${first}]`,
      );
    } else {
      targets.set(target, i);
    }
  });
  if (paths.length > 0 && (spec.containers ?? []).length === 0) {
    problems.push(
      "spec.pod.spec.containers: a workload with data paths needs at least one container to write them",
    );
  }
  return problems;
}

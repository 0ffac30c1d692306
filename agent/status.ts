/**
 * What the agent reports into its EdgeDevice's status.dataUpload: built from the index (what the
 * destination holds) and the last pass. Pure, so the shape is tested without a cluster; the
 * type is the CRD's, generated from manifests/crds (a type-only import: nothing is bundled).
 */
import type { StatusDataUpload as DataUpload } from "../capabilities/generated/edgedevice-v1alpha1";
import type { PassReport } from "./sync/engine";
import type { DestinationIndex } from "./sync/index-store";

export function buildDataUploadStatus(
  index: DestinationIndex,
  report: PassReport | undefined,
  problem?: string,
): DataUpload {
  const totals = index.files.workloadTotals();
  const names = [...new Set([...totals.keys(), ...Object.keys(index.workloads)])].sort();
  const workloads = names.map(name => {
    const state = index.workloads[name] ?? {};
    const t = totals.get(name) ?? { files: 0, bytes: 0 };
    return {
      name,
      filesSent: t.files,
      bytesSent: t.bytes,
      ...(state.lastUploadTime ? { lastUploadTime: state.lastUploadTime } : {}),
      ...(state.lastError ? { lastError: state.lastError } : {}),
    };
  });
  const times = (
    pick: (w: { lastSyncTime?: string; lastUploadTime?: string }) => string | undefined,
  ) =>
    Object.values(index.workloads)
      .map(pick)
      .filter((t): t is string => !!t)
      .sort()
      .pop();
  const lastError =
    problem ?? report?.aborted ?? report?.stateProblem ?? report?.failures[0]?.error;
  return {
    destination: `${index.endpoint}/${index.bucket}`,
    filesSent: workloads.reduce((n, w) => n + w.filesSent, 0),
    bytesSent: workloads.reduce((n, w) => n + w.bytesSent, 0),
    workloads,
    ...(report ? { filesWaiting: filesWaiting(report) } : {}),
    // null clears a field in a merge patch: an error that is over must not linger.
    lastError: (lastError ?? null) as string | undefined,
    ...(times(w => w.lastSyncTime) ? { lastSyncTime: times(w => w.lastSyncTime) } : {}),
    ...(times(w => w.lastUploadTime) ? { lastUploadTime: times(w => w.lastUploadTime) } : {}),
  };
}

/** Files the pass found to upload that are not in the bucket yet. */
export function filesWaiting(report: PassReport): number {
  return report.quiet + report.failures.length + report.changedDuringUpload;
}

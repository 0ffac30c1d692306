/**
 * The data-upload capability: admission for EdgeWorkloads, and the watches that reconcile each
 * device's storage, config and access. The bindings only route events; decisions live in the
 * pure helpers beside this file, I/O in reconcile-device.ts.
 */
import { Capability, K8s, Log, type PeprMutateRequest, type PeprValidateRequest } from "pepr";
import { EdgeDevice } from "./generated/edgedevice-v1alpha1";
import { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import "./generated/objectbucketclaim-v1alpha1";
import { ClaimEndpoints } from "./claim-endpoint";
import { injectExport, type PodSpec } from "./export-volume";
import { DEVICE_LABEL, MANAGED_BY } from "./device-resources";
import { DeviceChanges } from "./device-changes";
import { MetadataWatch, type MetadataEvent } from "./metadata-watch";
import { References } from "./references";
import { reconcileDevice } from "./reconcile-device";
import { readSettings } from "./settings";
import { WorkQueue } from "./work-queue";
import { workloadProblems } from "./workload-validation";

export const DataUpload = new Capability({
  name: "data-upload",
  description:
    "Gives each edge device its S3 storage config and injects /export into EdgeWorkloads",
});
const { When, OnSchedule } = DataUpload;

export function mutateWorkload(req: PeprMutateRequest<EdgeWorkload>): void {
  if (req.Raw.metadata?.deletionTimestamp) return; // being deleted: only finalizers may change
  const name = req.Raw.metadata?.name;
  const spec = req.Raw.spec?.pod?.spec as PodSpec | undefined;
  if (!name || !spec) return;
  req.Raw.spec!.pod!.spec = injectExport(name, spec);
}

/** Refuses invalid workloads; never blocks one being deleted (removing its finalizers). */
export function validateWorkload(req: PeprValidateRequest<EdgeWorkload>) {
  if (req.Raw.metadata?.deletionTimestamp) return req.Approve();
  const problems = workloadProblems(req.Raw);
  return problems.length ? req.Deny(problems.join("; "), 422) : req.Approve();
}

When(EdgeWorkload).IsCreatedOrUpdated().Mutate(mutateWorkload);
When(EdgeWorkload).IsCreatedOrUpdated().Validate(validateWorkload);

const settings = readSettings();
const references = new References();
for (const problem of settings.problems) Log.error(problem);
const context = {
  settings,
  references,
  accessApplied: new Set<string>(),
  claimEndpoints: new ClaimEndpoints(settings),
};
const queue = new WorkQueue(key => reconcileDevice(key, context), Log);
const deviceKey = (o: { metadata?: { namespace?: string; name?: string } }) =>
  `${o.metadata?.namespace}/${o.metadata?.name}`;

/** Every device in a namespace: a workload change may move any of them in or out of it. */
async function enqueueNamespace(namespace: string | undefined): Promise<void> {
  if (!namespace) return;
  try {
    for (const device of (await K8s(EdgeDevice).InNamespace(namespace).Get()).items)
      queue.enqueue(deviceKey(device));
  } catch (err) {
    Log.warn(
      { namespace, error: String((err as Error)?.message ?? err) },
      "cannot list devices; the resync will catch up",
    );
  }
}

// A device reconciles when what the module reads from it changes, not on status patches.
const deviceChanges = new DeviceChanges();
When(EdgeDevice)
  .IsCreatedOrUpdated()
  .Watch(device => {
    if (deviceChanges.changed(device)) queue.enqueue(deviceKey(device));
  });
When(EdgeDevice)
  .IsDeleted()
  .Watch(device => {
    deviceChanges.forget(device);
    queue.enqueue(deviceKey(device));
  });
When(EdgeWorkload)
  .IsCreatedOrUpdated()
  .Watch(workload => enqueueNamespace(workload.metadata?.namespace));
When(EdgeWorkload)
  .IsDeleted()
  .Watch(workload => enqueueNamespace(workload.metadata?.namespace));

/** The device a managed object belongs to (its device label), as a queue key. */
const ownerKey = (e: MetadataEvent) =>
  e.labels[DEVICE_LABEL] ? `${e.namespace}/${e.labels[DEVICE_LABEL]}` : undefined;
const managed = `${Object.keys(MANAGED_BY)[0]}=${Object.values(MANAGED_BY)[0]}`;

/**
 * Watches by metadata only (metadata-watch.ts). Pepr starts watches in its watcher process (and
 * in `pepr dev`); the admission process and `pepr build` load this file too and must not.
 * - a Secret or ConfigMap a device uses reconciles that device; a deleted device config Secret
 *   is written again;
 * - a device's ServiceAccount, Role or RoleBinding that is deleted or changed is applied again.
 */
function startMetadataWatches(): void {
  const warn = (obj: object, msg: string) => Log.warn(obj, msg);
  for (const [name, path] of [
    ["ConfigMap", "/api/v1/configmaps"],
    ["Secret", "/api/v1/secrets"],
  ] as const) {
    void new MetadataWatch(path, {
      change: e => {
        for (const key of references.devicesUsing(name, e.namespace, e.name)) queue.enqueue(key);
        const owner = ownerKey(e);
        if (name === "Secret" && e.type === "DELETED" && owner) queue.enqueue(owner);
      },
      resync: () => {
        for (const key of references.devicesUsingAny(name)) queue.enqueue(key);
      },
      warn,
    }).run();
  }
  for (const path of [
    "/api/v1/serviceaccounts",
    "/apis/rbac.authorization.k8s.io/v1/roles",
    "/apis/rbac.authorization.k8s.io/v1/rolebindings",
  ]) {
    const repair = (e: MetadataEvent) => {
      const owner = ownerKey(e);
      if (e.type === "ADDED" || !owner) return; // the module's own apply
      for (const uid of e.owners) context.accessApplied.delete(uid);
      queue.enqueue(owner);
    };
    void new MetadataWatch(
      path,
      { change: repair, resync: () => context.accessApplied.clear(), warn },
      managed,
    ).run();
  }
}
if (process.env.PEPR_WATCH_MODE === "true" || process.env.PEPR_MODE === "dev")
  startMetadataWatches();

// The safety net: every device again every resyncSeconds (a missed event, a claim bound
// meanwhile, a transient error that outlived its retries).
OnSchedule({
  name: "resync-devices",
  every: settings.resyncSeconds,
  unit: "seconds",
  run: async () => {
    try {
      for (const device of (await K8s(EdgeDevice).Get()).items) queue.enqueue(deviceKey(device));
    } catch (err) {
      Log.warn({ error: String((err as Error)?.message ?? err) }, "resync could not list devices");
    }
  },
});

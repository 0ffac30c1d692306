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
import { MetadataWatch } from "./metadata-watch";
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

When(EdgeDevice)
  .IsCreatedOrUpdated()
  .Watch(device => queue.enqueue(deviceKey(device)));
When(EdgeDevice)
  .IsDeleted()
  .Watch(device => queue.enqueue(deviceKey(device)));
When(EdgeWorkload)
  .IsCreatedOrUpdated()
  .Watch(workload => enqueueNamespace(workload.metadata?.namespace));
When(EdgeWorkload)
  .IsDeleted()
  .Watch(workload => enqueueNamespace(workload.metadata?.namespace));
// Secrets and ConfigMaps are watched by name only (metadata-watch.ts): a change reconciles the
// devices that use the object. Pepr starts watches in its watcher process (and in `pepr dev`);
// the admission process and `pepr build` load this file too and must not.
const runsWatches = process.env.PEPR_WATCH_MODE === "true" || process.env.PEPR_MODE === "dev";
if (runsWatches) {
  for (const [name, path] of [
    ["ConfigMap", "/api/v1/configmaps"],
    ["Secret", "/api/v1/secrets"],
  ] as const) {
    void new MetadataWatch(path, {
      change: (namespace, object) => {
        for (const key of references.devicesUsing(name, namespace, object)) queue.enqueue(key);
      },
      resync: () => {
        for (const key of references.devicesUsingAny(name)) queue.enqueue(key);
      },
      warn: (obj, msg) => Log.warn(obj, msg),
    }).run();
  }
}

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

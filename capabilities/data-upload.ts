/**
 * The data-upload capability: admission for EdgeWorkloads, and the cluster cache whose changes
 * reconcile each device's storage, config and access. Routing lives in cluster-cache.ts and
 * device-changes.ts, decisions in the pure helpers beside this file, I/O in reconcile-device.ts.
 */
import {
  Capability,
  Log,
  metricsCollector,
  type PeprMutateRequest,
  type PeprValidateRequest,
} from "pepr";
import { RateLimiter } from "../agent/sync/rate-limit";
import { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";
import "./generated/objectbucketclaim-v1alpha1";
import { ClaimEndpoints } from "./claim-endpoint";
import { ClusterCache } from "./cluster-cache";
import { injectExport, type PodSpec } from "./export-volume";
import { SharedBuckets } from "./key-space";
import { KubeApi } from "./kube-api";
import { ModuleMetrics } from "./module-metrics";
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
const api = new KubeApi();
// eslint-disable-next-line prefer-const -- the cache routes events to the queue, which needs it
let queue: WorkQueue;
const cache = new ClusterCache(
  { enqueue: key => queue.enqueue(key), references, warn: (obj, msg) => Log.warn(obj, msg) },
  api,
);
const metrics = new ModuleMetrics(metricsCollector);
const context = {
  settings,
  references,
  cache,
  api,
  limiter: new RateLimiter(settings.apiQps, settings.apiBurst),
  applied: new Map<string, string>(),
  claimEndpoints: new ClaimEndpoints(settings),
  sharedBuckets: new SharedBuckets(),
  enqueue: (key: string) => queue.enqueue(key),
  metrics,
};
queue = new WorkQueue(
  async key => {
    metrics.queue(queue.depth, queue.retrying);
    try {
      const result = await reconcileDevice(key, context);
      metrics.reconciled(true);
      Log.debug({ device: key }, "device reconciled");
      return result;
    } catch (err) {
      metrics.reconciled(false);
      throw err;
    }
  },
  Log,
  300_000,
  settings.workers,
);

/**
 * The watches that feed the cache run in Pepr's watcher process (and in `pepr dev`); the
 * admission process and `pepr build` load this file too and must not start them. The module
 * uses its own watches, not Pepr's Watch bindings: those keep no store the reconcile could read.
 */
if (process.env.PEPR_WATCH_MODE === "true" || process.env.PEPR_MODE === "dev") cache.start();

// The safety net: every device again every resyncSeconds, from the cache (a missed event, a
// transient error that outlived its retries, a claim endpoint that changed).
OnSchedule({
  name: "resync-devices",
  every: settings.resyncSeconds,
  unit: "seconds",
  run: () => {
    for (const key of cache.devices.keys()) queue.enqueue(key);
    metrics.queue(queue.depth, queue.retrying);
  },
});

import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  deviceNeedsReconcile,
  devicesForWorkload,
  ownerDeviceKey,
} from "../../capabilities/device-changes";
import {
  accessNeedsApply,
  deviceAccess,
  APPLIED_ANNOTATION,
} from "../../capabilities/device-resources";
import type { EdgeWorkload } from "../../capabilities/generated/edgeworkload-v1alpha1";
import { olderVersion, parseWatchLine } from "../../capabilities/informer";

const device = (
  generation: number,
  labels: Record<string, string> = {},
  status?: object,
  name = "cam",
) => ({
  metadata: { uid: `u-${name}`, name, namespace: "edge", generation, labels },
  status,
});

test("appearing, going, spec and label changes, deletion count; other status changes do not", () => {
  assert.ok(deviceNeedsReconcile(undefined, device(1)), "first sight");
  assert.ok(deviceNeedsReconcile(device(1), undefined), "gone");
  assert.not.ok(
    deviceNeedsReconcile(
      device(1, {}, { dataUpload: { filesSent: 2 } }),
      device(1, {}, { dataUpload: { filesSent: 3 } }),
    ),
    "status only",
  );
  // What conditions follow: disk pressure, a stall (and their end); the agent's first report
  // only while a condition waits for it.
  assert.not.ok(
    deviceNeedsReconcile(device(1), device(1, {}, { dataUpload: { filesSent: 3 } })),
    "first report, nothing waiting for it",
  );
  const waiting = { conditions: [{ type: "DiskPressure", reason: "AgentNotReporting" }] };
  assert.ok(
    deviceNeedsReconcile(
      device(1, {}, waiting),
      device(1, {}, { ...waiting, dataUpload: { filesSent: 3 } }),
    ),
    "first report, a condition waiting for it",
  );
  const reported = (more: object) => device(1, {}, { dataUpload: { filesSent: 3, ...more } });
  assert.ok(deviceNeedsReconcile(reported({}), reported({ diskPressure: "over" })), "pressure");
  assert.ok(deviceNeedsReconcile(reported({ stalled: "late" }), reported({})), "stall over");
  assert.ok(deviceNeedsReconcile(device(1), device(2)), "spec (generation)");
  assert.ok(deviceNeedsReconcile(device(2), device(2, { site: "north" })), "a label");
  assert.ok(
    deviceNeedsReconcile(device(2), {
      metadata: { ...device(2).metadata, deletionTimestamp: "now" },
    }),
    "deletion",
  );
  assert.not.ok(
    deviceNeedsReconcile(device(1, { a: "1", b: "2" }), device(1, { b: "2", a: "1" })),
    "label order",
  );
});

test("a workload edit concerns the devices it selects before or after, no others", () => {
  const devices = [
    device(1, { site: "north" }, undefined, "n1"),
    device(1, { site: "south" }, undefined, "s1"),
    device(1, { site: "west" }, undefined, "w1"),
  ];
  const workload = (site: string) =>
    ({ spec: { deviceSelector: { matchLabels: { site } } } }) as unknown as EdgeWorkload;
  assert.equal(devicesForWorkload(workload("north"), workload("south"), devices), [
    "edge/n1",
    "edge/s1",
  ]);
  assert.equal(devicesForWorkload(undefined, workload("west"), devices), ["edge/w1"]);
  assert.equal(devicesForWorkload(workload("east"), undefined, devices), []);
});

test("an object the module made names its device by label", () => {
  assert.is(
    ownerDeviceKey({
      namespace: "edge",
      labels: { "edge-data-upload.project-flotta.io/device": "cam" },
    }),
    "edge/cam",
  );
  assert.is(ownerDeviceKey({ namespace: "edge", labels: {} }), undefined);
});

test("access objects are applied when missing, edited by others, or from another version", () => {
  const desired = deviceAccess({ namespace: "edge", name: "cam", uid: "u" }).role;
  const mine = desired.metadata.annotations;
  assert.ok(accessNeedsApply(undefined, desired, undefined), "missing");
  const ours = { version: "7", annotations: mine, managers: ["pepr"] };
  assert.not.ok(accessNeedsApply(ours, desired, undefined), "ours, after a restart");
  assert.not.ok(accessNeedsApply(ours, desired, "7"), "as applied");
  const edited = { ...ours, version: "9", managers: ["pepr", "kubectl-edit"] };
  assert.ok(accessNeedsApply(edited, desired, "7"), "edited by someone else");
  assert.not.ok(
    accessNeedsApply(edited, desired, "9"),
    "their label stays after the module's apply: no loop",
  );
  assert.ok(
    accessNeedsApply({ ...ours, annotations: { [APPLIED_ANNOTATION]: "old" } }, desired, undefined),
    "an older module version's rules",
  );
  const other = deviceAccess({ namespace: "edge", name: "cam2", uid: "u" }).role;
  assert.is.not(other.metadata.annotations[APPLIED_ANNOTATION], mine[APPLIED_ANNOTATION]);
});

const line = (type: string, object: object) => JSON.stringify({ type, object });

test("watch lines: events, bookmarks, errors (410 recognisable), junk", () => {
  const added = parseWatchLine(
    line("ADDED", { metadata: { namespace: "edge", name: "s3creds", resourceVersion: "42" } }),
  );
  assert.equal(added, {
    type: "ADDED",
    object: { metadata: { namespace: "edge", name: "s3creds", resourceVersion: "42" } },
  });
  assert.is(
    parseWatchLine(line("BOOKMARK", { metadata: { resourceVersion: "50" } }))?.["type" as never],
    "BOOKMARK",
  );
  assert.equal(
    parseWatchLine(
      line("ERROR", { kind: "Status", code: 410, message: "too old resource version" }),
    ),
    { error: { code: 410, message: "too old resource version" } },
  );
  assert.is(parseWatchLine("{not json"), undefined);
  assert.is(parseWatchLine(line("ADDED", { metadata: {} })), undefined);
});

test("resource versions: numeric ones compare, opaque ones never count as older", () => {
  assert.ok(olderVersion("9", "10"));
  assert.not.ok(olderVersion("10", "9"));
  assert.not.ok(olderVersion("abc", "10"));
});

test.run();

/**
 * Only real changes make work: an agent's status patches reconcile nothing (counted in the
 * module's debug log, which the test run turns on), and a device's access objects or config Secret
 * deleted by someone come back through the module's watches, not a restart or the resync (the
 * module runs here with a resync of an hour).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { deviceConfigSecretName } from "../../agent/config/device-config";
import { applyYaml, configWhere, namespaceWithExternalStorage } from "../support/devices";
import { auditEventsSince, auditMark } from "../support/audit";
import { eventually } from "../support/eventually";
import { kubectl, kubectlOk } from "../support/kubectl";
import { moduleLogMark, reconcilesSince, restartModule } from "../support/module";
import { uniqueName } from "../support/names";

const ns = uniqueName("device-events");
const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const MODULE = `system:serviceaccount:pepr-system:pepr-${uuid}`;
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

test.before(async () => {
  restartModule({ EDGE_UPLOAD_RESYNC_SECONDS: "3600" });
  namespaceWithExternalStorage(ns);
  applyYaml(
    ns,
    `{"apiVersion":"management.project-flotta.io/v1alpha1","kind":"EdgeDevice","metadata":{"name":"cam"},"spec":{"storage":{"s3":{"configMapName":"ext","secretName":"ext","createOBC":false}}}}`,
  );
  await configWhere(ns, "cam", "external storage", c => c.storage?.bucket === "ext-bucket");
});
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  restartModule();
});

test("an agent's status patches reconcile nothing; a label change does", async () => {
  await sleep(2000); // the reconciles of the device's creation are over
  const from = moduleLogMark();
  for (let i = 1; i <= 5; i++)
    kubectlOk([
      "patch",
      "edgedevice",
      "cam",
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      `{"status":{"dataUpload":{"filesSent":${i},"lastSyncTime":"2026-11-28T08:00:0${i}Z"}}}`,
    ]);
  await sleep(4000);
  assert.is(reconcilesSince(from, ns, "cam"), 0, "status patches reconciled the device");

  const control = moduleLogMark();
  kubectlOk(["label", "edgedevice", "cam", "-n", ns, "site=north"]);
  await eventually("the module to reconcile the relabelled device", () =>
    reconcilesSince(control, ns, "cam") > 0 ? true : undefined,
  );
});

test("a deleted ServiceAccount, Role or RoleBinding of a device is applied again", async () => {
  for (const kind of ["serviceaccount", "role", "rolebinding"]) {
    const name = "cam-data-upload-agent";
    const uid = () =>
      kubectl(["get", kind, name, "-n", ns, "-o", "jsonpath={.metadata.uid}"]).stdout;
    const before = uid();
    assert.ok(before, `${kind} exists`);
    kubectlOk(["delete", kind, name, "-n", ns]);
    await eventually(`${kind} ${name} back`, () => {
      const now = uid();
      return now && now !== before ? true : undefined;
    });
  }
});

test("a device Role someone widened is put back", async () => {
  const name = "cam-data-upload-agent";
  const verbs = () =>
    kubectl(["get", "role", name, "-n", ns, "-o", "jsonpath={.rules[0].verbs}"]).stdout;
  assert.is(verbs(), '["get","watch"]');
  kubectlOk([
    "patch",
    "role",
    name,
    "-n",
    ns,
    "--type=json",
    "-p",
    '[{"op":"replace","path":"/rules/0/verbs","value":["get","watch","list","update"]}]',
  ]);
  await eventually("the Role's rules back", () =>
    verbs() === '["get","watch"]' ? true : undefined,
  );
});

test("a deleted config Secret is written again", async () => {
  const name = deviceConfigSecretName("cam");
  kubectlOk(["delete", "secret", name, "-n", ns]);
  await configWhere(ns, "cam", "written again", c => c.storage?.bucket === "ext-bucket");
});

/**
 * Requests of the module (not kubectl with its token) about this namespace's devices and what it
 * keeps for them (other test files' devices may still be converging).
 */
const DEVICE_RESOURCES = [
  "edgedevices",
  "edgeworkloads",
  "secrets",
  "configmaps",
  "serviceaccounts",
  "roles",
  "rolebindings",
  "objectbucketclaims",
  "events",
];
function moduleRequests(mark: number): string[] {
  return auditEventsSince(mark)
    .filter(
      e =>
        e.user.username === MODULE &&
        !e.userAgent?.startsWith("kubectl/") &&
        e.objectRef?.namespace === ns &&
        DEVICE_RESOURCES.includes(e.objectRef?.resource ?? "") &&
        e.verb !== "list" &&
        e.verb !== "watch",
    )
    .map(e => `${e.verb} ${e.objectRef?.resource} ${e.objectRef?.namespace}/${e.objectRef?.name}`);
}

test("a restart reconciles from the cache: it writes nothing and reads only the storage data", async () => {
  const from = auditMark();
  const logFrom = moduleLogMark();
  restartModule({ EDGE_UPLOAD_RESYNC_SECONDS: "3600" });
  await eventually("the restarted module to reconcile the device", () =>
    reconcilesSince(logFrom, ns, "cam") > 0 ? true : undefined,
  );
  // The data of the ConfigMap and Secret the device names is read once per process (and then
  // once per version), whatever the number of devices that name them; nothing is written.
  assert.equal(
    moduleRequests(from).sort(),
    [`get configmaps ${ns}/ext`, `get secrets ${ns}/ext`],
    "requests of the restarted module",
  );
});

test.run();

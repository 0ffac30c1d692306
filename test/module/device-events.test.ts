/**
 * Only real changes make work: an agent's status patches reconcile nothing (counted in the API
 * server's audit log of the module's requests), and a device's access objects or config Secret
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
import { restartModule } from "../support/module";
import { uniqueName } from "../support/names";

const ns = uniqueName("device-events");
const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const MODULE = `system:serviceaccount:pepr-system:pepr-${uuid}`;
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** The module's own GETs of the device since `mark` (kubectl with its token is not the module). */
function moduleGetsOfDevice(mark: number, name: string): number {
  return auditEventsSince(mark).filter(
    e =>
      e.user.username === MODULE &&
      !e.userAgent?.startsWith("kubectl/") &&
      e.verb === "get" &&
      e.objectRef?.resource === "edgedevices" &&
      !e.objectRef.subresource &&
      e.objectRef.namespace === ns &&
      e.objectRef.name === name,
  ).length;
}

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
  const from = auditMark();
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
  assert.is(moduleGetsOfDevice(from, "cam"), 0, "the module read the device after status patches");

  const control = auditMark();
  kubectlOk(["label", "edgedevice", "cam", "-n", ns, "site=north"]);
  await eventually("the module to reconcile the relabelled device", () =>
    moduleGetsOfDevice(control, "cam") > 0 ? true : undefined,
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

test("a deleted config Secret is written again", async () => {
  const name = deviceConfigSecretName("cam");
  kubectlOk(["delete", "secret", name, "-n", ns]);
  await configWhere(ns, "cam", "written again", c => c.storage?.bucket === "ext-bucket");
});

test.run();

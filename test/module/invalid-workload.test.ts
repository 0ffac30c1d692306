/**
 * One bad workload does not stop a fleet. A workload that fails validation, stored while the
 * module was down (the module is stopped and started again here, as an admin would), is left
 * out of the configs of the devices it selects, with a condition on them and an Event on the
 * workload; every other workload and the storage still reach them. Admission never blocks
 * deleting it and removing its finalizers.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { moduleCommand } from "../support/module";
import {
  applyYaml,
  condition,
  conditionWhere,
  configWhere,
  namespaceWithExternalStorage,
} from "../support/devices";
import { eventually } from "../support/eventually";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("invalid-wl");
const workload = (name: string, source: string, target: string, extra = "") => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: ${name}${extra} }
spec:
  deviceSelector: { matchLabels: { app: cam } }
  type: pod
  pod: { spec: { containers: [{ name: c, image: busybox }] } }
  data: { paths: [{ source: "${source}", target: "${target}" }] }
`;
const names = (c: { workloads: { name: string }[] }) => c.workloads.map(w => w.name).join(",");

test.before(() => namespaceWithExternalStorage(ns));
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("an invalid workload is left out; the rest still reaches the devices it selects", async () => {
  for (const d of ["d1", "d2"])
    applyYaml(
      ns,
      `{"apiVersion":"management.project-flotta.io/v1alpha1","kind":"EdgeDevice","metadata":{"name":"${d}","labels":{"app":"cam"}},"spec":{"storage":{"s3":{"configMapName":"ext","secretName":"ext","createOBC":false}}}}`,
    );
  applyYaml(ns, workload("good", "stats", "statistics"));
  await configWhere(ns, "d1", "the good workload", c => names(c) === "good");

  moduleCommand("stop"); // no webhook now: what is applied is stored as it is
  try {
    applyYaml(ns, workload("bad", "../escape", "t", ", finalizers: [example.com/keep]"));
  } finally {
    moduleCommand("start");
  }
  for (const d of ["d1", "d2"]) {
    const cond = await conditionWhere(ns, d, "InvalidWorkload", "WorkloadsValid", 30_000);
    assert.is(cond.status, "False");
    assert.match(
      cond.message,
      new RegExp(`EdgeWorkload ${ns}/bad: spec\\.data\\.paths\\[0\\]\\.source`),
    );
    const config = await configWhere(ns, d, "storage and the good workload", c => !!c.storage);
    assert.is(names(config), "good");
    assert.is(config.storage?.bucket, "ext-bucket");
  }
  await eventually("a Warning on the workload", () => {
    const out = kubectlOk([
      "get",
      "events",
      "-n",
      ns,
      "--field-selector",
      "involvedObject.name=bad",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);
    return out.includes("InvalidWorkload") ? true : undefined;
  });

  // The fleet goes on: an edit of the good workload reaches both devices.
  applyYaml(ns, workload("good", "stats", "moved"));
  for (const d of ["d1", "d2"])
    await configWhere(ns, d, "the edit", c => c.workloads[0]?.paths[0]?.target === "moved");

  // Deleting the invalid workload and removing its finalizer is not blocked by admission.
  kubectlOk(["delete", "edgeworkload", "bad", "-n", ns, "--wait=false"]);
  kubectlOk([
    "patch",
    "edgeworkload",
    "bad",
    "-n",
    ns,
    "--type=merge",
    "-p",
    '{"metadata":{"finalizers":null}}',
  ]);
  await eventually("the workload gone", () =>
    kubectl(["get", "edgeworkload", "bad", "-n", ns]).status !== 0 ? true : undefined,
  );
  await eventually("the condition gone", () =>
    condition(ns, "d1", "WorkloadsValid") === undefined ? true : undefined,
  );
});

test.run();

/**
 * EdgeWorkload admission through the real API server and the running module: the seed's
 * workload gets its /export volume, applying it again changes nothing, and every refused
 * workload is refused with the field named.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { kubectl, kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { workloadYaml as workload } from "../support/devices";

const ns = uniqueName("admission");

test.before(() => {
  kubectlOk(["create", "namespace", ns]);
});
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

interface Workload {
  metadata: { resourceVersion: string };
  spec: { pod: { spec: { containers: { volumeMounts?: unknown[] }[]; volumes?: unknown[] } } };
}

test("the seed's os-stats workload gets the /export volume and mount", () => {
  kubectlOk(["apply", "-n", ns, "-f", "manifests/samples/os-stats-workload.yaml"]);
  const w = kubectlJson<Workload>(["get", "-n", ns, "edgeworkload", "os-stats"]);
  assert.equal(w.spec.pod.spec.volumes, [
    {
      name: "export-os-stats",
      hostPath: { path: "/var/local/yggdrasil/device/volumes/os-stats", type: "DirectoryOrCreate" },
    },
  ]);
  assert.equal(w.spec.pod.spec.containers[0].volumeMounts, [
    { name: "export-os-stats", mountPath: "/export" },
  ]);
});

test("applying the same workload again changes nothing", () => {
  const before = kubectlJson<Workload>(["get", "-n", ns, "edgeworkload", "os-stats"]).metadata
    .resourceVersion;
  // kubectl sends a merge patch for the containers list (the mount is not in the file); the
  // module injects the same mount again, so the stored object does not change.
  kubectlOk(["apply", "-n", ns, "-f", "manifests/samples/os-stats-workload.yaml"]);
  assert.is(
    kubectlJson<Workload>(["get", "-n", ns, "edgeworkload", "os-stats"]).metadata.resourceVersion,
    before,
  );
});

function refused(yaml: string): string {
  const result = kubectl(["apply", "-n", ns, "-f", "-"], { input: yaml });
  assert.is.not(result.status, 0, "the workload was accepted");
  return result.stderr;
}
const oneContainer = "{ containers: [{ name: c, image: busybox }] }";

test("a user's own mount at or under /export is refused", () => {
  const mine = refused(
    workload(
      "own-mount",
      "{ containers: [{ name: c, image: busybox, volumeMounts: [{ name: mine, mountPath: /export/sub }] }], volumes: [{ name: mine, emptyDir: {} }] }",
      "[]",
    ),
  );
  assert.match(
    mine,
    /spec\.pod\.spec\.containers\[0\]\.volumeMounts\[0\]\.mountPath: "\/export\/sub" is reserved/,
  );
});

test("bad data paths are refused with the field named", () => {
  assert.match(
    refused(workload("abs", oneContainer, "[{ source: /etc, target: t }]")),
    /spec\.data\.paths\[0\]\.source: must be relative, not absolute/,
  );
  assert.match(
    refused(workload("dots", oneContainer, "[{ source: s, target: a/../../b }]")),
    /spec\.data\.paths\[0\]\.target: must not contain '\.\.'/,
  );
  assert.match(
    refused(workload("empty", oneContainer, '[{ source: "", target: t }]')),
    /spec\.data\.paths\[0\]\.source/,
  );
  assert.match(
    refused(workload("dup", oneContainer, "[{ source: a, target: t }, { source: b, target: t/ }]")),
    /spec\.data\.paths\[1\]\.target: "t\/" is already the target of spec\.data\.paths\[0\]/,
  );
  assert.match(
    refused(workload("nocontainers", "{ containers: [] }", "[{ source: a, target: t }]")),
    /spec\.pod\.spec\.containers: a workload with data paths needs at least one container/,
  );
  // A size the schema's pattern lets through but no cap can be: zero, or past 8Pi.
  assert.match(
    refused(
      workload("nocap", oneContainer, '[{ source: a, target: t, retention: { maxSize: "0" } }]'),
    ),
    /spec\.data\.paths\[0\]\.retention\.maxSize: "0" must be a size of at least 1 byte and below 8Pi/,
  );
  assert.match(
    refused(
      workload(
        "hugecap",
        oneContainer,
        '[{ source: a, target: t, retention: { maxSize: "9000Ti" } }]',
      ),
    ),
    /spec\.data\.paths\[0\]\.retention\.maxSize: "9000Ti"/,
  );
});

test.run();

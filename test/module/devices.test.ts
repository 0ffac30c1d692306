/**
 * Device storage and config through the running module, as a user drives it: apply devices and
 * workloads with kubectl, patch spec.storage (what `kubectl edit` does), read the config Secret
 * and the conditions. OBCs are bound by the test provisioner against the local S3 server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { testEnv } from "../support/env";
import {
  applyYaml,
  condition,
  conditionWhere,
  configWhere,
  device,
  deviceConfig,
  s3Objects,
} from "../support/devices";
import { eventually } from "../support/eventually";
import { kubectl, kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("devices");
const endpoint = new URL(testEnv.s3.endpoint);
const creds = testEnv.s3;
const edgeDevice = (name: string, s3: string, labels = "{}") => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: ${name}, labels: ${labels} }
spec: { requestTime: "2026-11-25T10:00:00Z", storage: { s3: ${s3} } }
`;
const patchStorage = (name: string, s3: object) =>
  kubectlOk([
    "patch",
    "edgedevice",
    name,
    "-n",
    ns,
    "--type=merge",
    "-p",
    JSON.stringify({ spec: { storage: { s3 } } }),
  ]);

test.before(() => {
  kubectlOk(["create", "namespace", ns]);
  applyYaml(ns, s3Objects(ns, "bucket-a", "bucket-a", endpoint, creds));
  applyYaml(ns, s3Objects(ns, "bucket-b", "bucket-b", endpoint, creds));
});
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("external storage: the config Secret holds it, status and columns show it", async () => {
  applyYaml(
    ns,
    edgeDevice("ext", "{ configMapName: bucket-a, secretName: bucket-a, createOBC: false }"),
  );
  const config = await configWhere(
    ns,
    "ext",
    "external bucket-a",
    c => c.storage?.bucket === "bucket-a",
  );
  assert.equal(config.storage, {
    kind: "external",
    endpoint: `http://${endpoint.hostname}:${endpoint.port}`,
    bucket: "bucket-a",
    region: "us-east-1",
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    forcePathStyle: true,
  });
  const ready = await conditionWhere(ns, "ext", "ExternalBucket");
  assert.is(ready.status, "True");
  assert.is(ready.observedGeneration, 1);
  const secret = kubectlJson<{
    metadata: { ownerReferences: { kind: string; name: string }[]; labels: Record<string, string> };
  }>(["get", "secret", "ext-data-upload", "-n", ns]);
  assert.equal(
    secret.metadata.ownerReferences.map(o => [o.kind, o.name]),
    [["EdgeDevice", "ext"]],
  );
  assert.is(secret.metadata.labels["app.kubernetes.io/managed-by"], "edge-data-upload");
  const row = kubectlOk(["get", "edgedevice", "ext", "-n", ns, "--no-headers"]).trim();
  assert.match(
    row,
    /^ext\s+external\s+bucket-a\s+True\s+\d+s$/,
    "LAST UPLOAD is blank until the agent reports",
  );
  const events = kubectlOk([
    "get",
    "events",
    "-n",
    ns,
    "--field-selector",
    "involvedObject.name=ext",
    "-o",
    "jsonpath={.items[*].reason}",
  ]);
  assert.match(events, /StorageChanged/);
});

test("OCS: a claim is created, bound by the provisioner, and its bucket used", async () => {
  applyYaml(ns, edgeDevice("ocs", "{ createOBC: true }"));
  const claim = await eventually("the ObjectBucketClaim", () => {
    const r = kubectl(["get", "objectbucketclaim", "ocs", "-n", ns, "-o", "json"]);
    return r.status === 0
      ? (JSON.parse(r.stdout) as { spec: { generateBucketName: string; storageClassName: string } })
      : undefined;
  });
  assert.is(claim.spec.generateBucketName, "ocs");
  assert.is(claim.spec.storageClassName, "openshift-storage.noobaa.io");
  const config = await configWhere(
    ns,
    "ocs",
    "the claim's bucket",
    c => c.storage?.kind === "ocs",
    30_000,
  );
  assert.match(config.storage!.bucket, /^ocs-[0-9a-f]{6}$/);
  await conditionWhere(ns, "ocs", "ObcBound", "BucketClaimReady");
  assert.is(device(ns, "ocs").status?.dataObc, "ocs");
});

test("no storage: a config without storage, and Ready=False saying why", async () => {
  applyYaml(ns, edgeDevice("none", "{ createOBC: false }"));
  const config = await configWhere(ns, "none", "written", () => true);
  assert.is(config.storage, null);
  const ready = await conditionWhere(ns, "none", "NoStorage");
  assert.is(ready.status, "False");
});

test("each failure is a condition naming resource and key", async () => {
  const cases: [string, string, string, RegExp][] = [
    [
      "missing-cm",
      "{ configMapName: nope, secretName: bucket-a, createOBC: false }",
      "ConfigMapNotFound",
      new RegExp(`ConfigMap ${ns}/nope \\(spec.storage.s3.configMapName\\) does not exist`),
    ],
    [
      "missing-secret",
      "{ configMapName: bucket-a, secretName: nope, createOBC: false }",
      "SecretNotFound",
      new RegExp(`Secret ${ns}/nope`),
    ],
  ];
  applyYaml(
    ns,
    s3Objects(ns, "bad-port", "bkt", new URL("http://h:1"), creds).replace(
      'BUCKET_PORT: "1"',
      'BUCKET_PORT: "99999"',
    ),
  );
  applyYaml(
    ns,
    s3Objects(ns, "no-key", "bkt", endpoint, creds).replace(
      `AWS_SECRET_ACCESS_KEY: ${creds.secretAccessKey}`,
      'AWS_SECRET_ACCESS_KEY: ""',
    ),
  );
  applyYaml(
    ns,
    s3Objects(ns, "bad-ca", "bkt", endpoint, creds, ', "tls.crt": "not a certificate"'),
  );
  cases.push(
    [
      "bad-port",
      "{ configMapName: bad-port, secretName: bad-port, createOBC: false }",
      "InvalidPort",
      new RegExp(`ConfigMap ${ns}/bad-port: key BUCKET_PORT: "99999" is not a port number`),
    ],
    [
      "no-key",
      "{ configMapName: no-key, secretName: no-key, createOBC: false }",
      "KeyMissing",
      new RegExp(`Secret ${ns}/no-key: key AWS_SECRET_ACCESS_KEY is missing or empty`),
    ],
    [
      "bad-ca",
      "{ configMapName: bad-ca, secretName: bad-ca, createOBC: false }",
      "InvalidCA",
      new RegExp(`Secret ${ns}/bad-ca: key tls.crt is not a PEM`),
    ],
  );
  for (const [name, s3] of cases) applyYaml(ns, edgeDevice(name, s3));
  for (const [name, , reason, message] of cases) {
    const ready = await conditionWhere(ns, name, reason);
    assert.is(ready.status, "False");
    assert.match(ready.message, message);
    assert.match(ready.message, /The device has no storage until this is fixed/);
    assert.is(deviceConfig(ns, name)?.storage, null);
  }
});

test("switching storage with a patch: external A -> B -> OCS -> none, each within 10 s", async () => {
  applyYaml(
    ns,
    edgeDevice("switch", "{ configMapName: bucket-a, secretName: bucket-a, createOBC: false }"),
  );
  await configWhere(ns, "switch", "bucket A", c => c.storage?.bucket === "bucket-a");
  patchStorage("switch", { configMapName: "bucket-b", secretName: "bucket-b" });
  await configWhere(ns, "switch", "bucket B", c => c.storage?.bucket === "bucket-b");
  patchStorage("switch", { configMapName: null, secretName: null, createOBC: true });
  await configWhere(ns, "switch", "OCS", c => c.storage?.kind === "ocs", 30_000);
  patchStorage("switch", { createOBC: false });
  await configWhere(ns, "switch", "no storage", c => c.storage === null);
  assert.is(
    kubectl(["get", "objectbucketclaim", "switch", "-n", ns]).status,
    0,
    "the claim is never deleted",
  );
});

test("a broken switch keeps the last good config, and says so", async () => {
  applyYaml(
    ns,
    edgeDevice("keep", "{ configMapName: bucket-a, secretName: bucket-a, createOBC: false }"),
  );
  await configWhere(ns, "keep", "bucket A", c => c.storage?.bucket === "bucket-a");
  patchStorage("keep", { configMapName: "bucket-b", secretName: "missing-secret" });
  const ready = await conditionWhere(ns, "keep", "SecretNotFound");
  assert.match(ready.message, /keeps its last good config \(external bucket bucket-a/);
  assert.is(deviceConfig(ns, "keep")?.storage?.bucket, "bucket-a");
  // Fixing the reference (creating the Secret later) moves it on, without touching the device.
  applyYaml(ns, s3Objects(ns, "missing-secret", "bucket-b", endpoint, creds));
  await configWhere(
    ns,
    "keep",
    "bucket B once the Secret exists",
    c => c.storage?.bucket === "bucket-b",
  );
  assert.is(condition(ns, "keep")?.status, "True");
});

test("a Secret created after its device ends in a correct config", async () => {
  applyYaml(ns, edgeDevice("late", "{ configMapName: late, secretName: late, createOBC: false }"));
  await conditionWhere(ns, "late", "ConfigMapNotFound");
  applyYaml(ns, s3Objects(ns, "late", "late-bucket", endpoint, creds));
  await configWhere(ns, "late", "the late bucket", c => c.storage?.bucket === "late-bucket");
});

test("workloads: a selector that starts matching adds its paths; a deleted workload removes them", async () => {
  applyYaml(
    ns,
    edgeDevice(
      "sel",
      "{ configMapName: bucket-a, secretName: bucket-a, createOBC: false }",
      "{ dc: home }",
    ),
  );
  applyYaml(
    ns,
    `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: lab-stats }
spec:
  type: pod
  deviceSelector: { matchLabels: { dc: lab } }
  pod: { spec: { containers: [{ name: c, image: busybox }] } }
  data: { paths: [{ source: stats, target: lab-statistics }] }
`,
  );
  applyYaml(
    ns,
    "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\nmetadata: { name: by-name }\nspec:\n  type: pod\n  device: sel\n  pod: { spec: { containers: [{ name: c, image: busybox }] } }\n  data: { paths: [{ source: frames, target: video }] }\n",
  );
  await configWhere(
    ns,
    "sel",
    "by-name only",
    c => c.workloads.map(w => w.name).join() === "by-name",
  );
  kubectlOk(["label", "edgedevice", "sel", "-n", ns, "dc=lab", "--overwrite"]);
  await configWhere(
    ns,
    "sel",
    "the lab workload after the label change",
    c => c.workloads.map(w => w.name).join() === "by-name,lab-stats",
  );
  kubectlOk(["delete", "edgeworkload", "by-name", "-n", ns]);
  const config = await configWhere(
    ns,
    "sel",
    "without the deleted workload",
    c => c.workloads.map(w => w.name).join() === "lab-stats",
  );
  assert.equal(config.workloads[0].paths, [{ source: "stats", target: "lab-statistics" }]);
});

test.run();

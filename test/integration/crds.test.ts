/**
 * The CRDs against the real API server: they apply and become established; an EdgeDevice
 * round-trips through kubectl and through kubernetes-fluent-client; objects that break the
 * schema are refused with the field named; the printer columns show status.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { K8s } from "kubernetes-fluent-client";
import { EdgeDevice } from "../../capabilities/generated/edgedevice-v1alpha1";
import { kubectl, kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("crds");

test.before(() => {
  kubectlOk(["apply", "-f", "manifests/crds/"]);
  kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "-f", "manifests/crds/"]);
  kubectlOk(["create", "namespace", ns]);
});

test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("the three CRDs are served", () => {
  const resources = kubectlOk(["api-resources", "-o", "name"]);
  for (const name of [
    "edgedevices.management.project-flotta.io",
    "edgeworkloads.management.project-flotta.io",
    "objectbucketclaims.objectbucket.io",
  ]) {
    assert.ok(resources.split("\n").includes(name), `${name} is not served`);
  }
});

test("an EdgeDevice round-trips through kubectl", () => {
  kubectlOk(["apply", "-n", ns, "-f", "-"], {
    input: `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata:
  name: camera-1
  labels: { dc: home }
spec:
  requestTime: "2021-10-19T18:13:04Z"
  storage:
    s3: { configMapName: s3configmap-name, secretName: s3secret-name }
`,
  });
  const device = kubectlJson<EdgeDevice>(["get", "-n", ns, "edgedevice", "camera-1"]);
  assert.equal(device.spec, {
    requestTime: "2021-10-19T18:13:04Z",
    storage: { s3: { configMapName: "s3configmap-name", secretName: "s3secret-name" } },
  });
  assert.is(device.metadata?.labels?.dc, "home");
});

test("an EdgeDevice round-trips through kubernetes-fluent-client, status included", async () => {
  await K8s(EdgeDevice).Apply({
    metadata: { name: "camera-2", namespace: ns },
    spec: { storage: { s3: { createOBC: true } } },
  });
  await K8s(EdgeDevice).PatchStatus({
    metadata: { name: "camera-2", namespace: ns },
    status: {
      storage: { kind: "ocs", bucket: "camera-2-bucket" },
      dataUpload: { lastUploadTime: "2026-11-25T10:00:00Z", filesSent: 3, bytesSent: 1024 },
    },
  });
  const device = await K8s(EdgeDevice).InNamespace(ns).Get("camera-2");
  assert.is(device.spec?.storage?.s3?.createOBC, true);
  assert.is(device.status?.storage?.bucket, "camera-2-bucket");
  assert.is(device.status?.dataUpload?.filesSent, 3);

  const table = kubectlOk(["get", "-n", ns, "edgedevice", "camera-2"]);
  const [header, row] = table.trim().split("\n");
  assert.match(header, /^NAME\s+STORAGE\s+BUCKET\s+READY\s+LAST UPLOAD\s+WAITING\s+AGE$/);
  assert.match(row, /^camera-2\s+ocs\s+camera-2-bucket\s+/);
});

function applyRejected(yaml: string): string {
  const result = kubectl(["apply", "-n", ns, "-f", "-"], { input: yaml });
  assert.is.not(result.status, 0, "the API server accepted an object that breaks the schema");
  return result.stderr;
}

test("an EdgeDevice that breaks the schema is refused with the field named", () => {
  const stderr = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: bad-device }
spec:
  storage:
    s3: { createOBC: "yes" }
`);
  assert.match(stderr, /spec\.storage\.s3\.createOBC/);

  // The upload options: the schema alone (no module here) refuses what it can express.
  const prefix = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: bad-prefix }
spec:
  storage: { keyPrefix: "{nope}/x" }
  dataUpload: { abortUploadsAfterHours: 0 }
`);
  assert.match(prefix, /spec\.storage\.keyPrefix: Invalid value/);
  assert.match(prefix, /spec\.dataUpload\.abortUploadsAfterHours: Invalid value/);

  const timetable = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: bad-timetable }
spec:
  dataUpload:
    stallAfterSeconds: 5
    bandwidth:
      timeZone: Mars/Olympus
      jitterSeconds: 3601
      schedule:
        - { start: "08:00", rate: 1Mi }
        - { start: "08:00", rate: "off" }
        - { start: "24:00", rate: fast }
        - { start: "23:00", rate: 1234567Ti }
`);
  for (const field of [
    /spec\.dataUpload\.stallAfterSeconds: Invalid value/,
    /spec\.dataUpload\.bandwidth\.timeZone: Invalid value: .*unknown time zone Mars\/Olympus/,
    /spec\.dataUpload\.bandwidth\.jitterSeconds: Invalid value/,
    /spec\.dataUpload\.bandwidth\.schedule\[1\]: Duplicate value/,
    /spec\.dataUpload\.bandwidth\.schedule\[2\]\.start: Invalid value: "24:00"/,
    /spec\.dataUpload\.bandwidth\.schedule\[2\]\.rate: Invalid value: "fast"/,
    /spec\.dataUpload\.bandwidth\.schedule\[3\]\.rate: Invalid value: "1234567Ti"/,
  ])
    assert.match(timetable, field);
  kubectlOk(["apply", "-n", ns, "-f", "-"], {
    input: `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: good-timetable }
spec:
  dataUpload:
    stallAfterSeconds: 600
    bandwidth:
      timeZone: Europe/Paris
      schedule: [{ start: "08:00", rate: 512Ki }, { start: "19:00", rate: unlimited }, { start: "23:00", rate: "off" }]
`,
  });
});

test("an EdgeWorkload that breaks the schema is refused with the field named", () => {
  const noType = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: no-type }
spec:
  device: camera-1
`);
  assert.match(noType, /spec\.type: Required value/);

  const noTarget = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: no-target }
spec:
  type: pod
  data:
    paths:
      - source: stats
`);
  assert.match(noTarget, /spec\.data\.paths\[0\]\.target: Required value/);

  const wrongType = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: wrong-type }
spec:
  type: vm
`);
  assert.match(wrongType, /spec\.type: Unsupported value: "vm"/);

  const badFilters = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: bad-filters }
spec:
  type: pod
  data:
    paths:
      - { source: s, target: t, include: [""], quietSeconds: 86401 }
`);
  assert.match(badFilters, /spec\.data\.paths\[0\]\.include\[0\]/);
  assert.match(badFilters, /spec\.data\.paths\[0\]\.quietSeconds/);

  const badUpload = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: bad-upload }
spec:
  type: pod
  data:
    paths:
      - { source: s, target: t, priority: 1001, order: Random, compression: zip, retention: { maxSize: 10MB } }
      - { source: v, target: v, retention: { deleteAfterUpload: true, deleteAfterSeconds: -1 } }
`);
  for (const field of [
    /spec\.data\.paths\[0\]\.priority: Invalid value/,
    /spec\.data\.paths\[0\]\.order: Unsupported value: "Random"/,
    /spec\.data\.paths\[0\]\.compression: Unsupported value: "zip"/,
    /spec\.data\.paths\[0\]\.retention\.maxSize: Invalid value: "10MB"/,
    /spec\.data\.paths\[1\]\.retention\.deleteAfterSeconds: Invalid value/,
  ])
    assert.match(badUpload, field);
  // The API server checks CEL rules only once the types are right: on their own.
  const noRetention = applyRejected(`
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: no-retention }
spec:
  type: pod
  data:
    paths:
      - { source: u, target: u, retention: { deleteAfterUpload: false } }
`);
  assert.match(
    noRetention,
    /spec\.data\.paths\[0\]\.retention: Invalid value: .*needs deleteAfterUpload: true or maxSize/,
  );
});

test("the seed's os-stats EdgeWorkload is accepted as written", () => {
  kubectlOk(["apply", "-n", ns, "-f", "manifests/samples/os-stats-workload.yaml"]);
  const workload = kubectlJson<{ spec: { data: { paths: unknown[] } } }>([
    "get",
    "-n",
    ns,
    "edgeworkload",
    "os-stats",
  ]);
  assert.equal(workload.spec.data.paths, [{ source: "stats", target: "statistics" }]);
});

test.run();

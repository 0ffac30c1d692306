/**
 * No takeovers: an object with one of the module's names for a device (its config Secret, its
 * ServiceAccount, Role or RoleBinding, its ObjectBucketClaim) that the module does not own is
 * left alone, and the device says so: Ready=False, reason NameConflict, naming the object.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  applyYaml,
  conditionWhere,
  configWhere,
  namespaceWithExternalStorage,
} from "../support/devices";
import { kubectl, kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("conflict");
const device = (name: string, s3: string) => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: ${name} }
spec: { storage: { s3: ${s3} } }
`;
const external = "{ configMapName: ext, secretName: ext, createOBC: false }";
interface Meta {
  metadata: { ownerReferences?: unknown[]; labels?: Record<string, string> };
  data?: Record<string, string>;
}

test.before(() => namespaceWithExternalStorage(ns));
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("someone else's Secret named like the device config is not overwritten", async () => {
  applyYaml(
    ns,
    `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c1-data-upload"},"stringData":{"mine":"yes"}}`,
  );
  applyYaml(ns, device("c1", external));
  const ready = await conditionWhere(ns, "c1", "NameConflict");
  assert.is(ready.status, "False");
  assert.match(
    ready.message,
    new RegExp(`Secret ${ns}/c1-data-upload already exists and is not managed`),
  );
  const secret = kubectlJson<Meta>(["get", "secret", "c1-data-upload", "-n", ns]);
  assert.equal(Object.keys(secret.data ?? {}), ["mine"]);
  assert.is(secret.metadata.ownerReferences, undefined);
  // Removed by its owner, the name is free: the next reconcile (any edit of the device) writes it.
  kubectlOk(["delete", "secret", "c1-data-upload", "-n", ns]);
  kubectlOk(["label", "edgedevice", "c1", "-n", ns, "touched=1"]);
  await configWhere(ns, "c1", "external storage", c => c.storage?.bucket === "ext-bucket");
  await conditionWhere(ns, "c1", "ExternalBucket");
});

test("someone else's ServiceAccount, Role or RoleBinding is not taken over", async () => {
  const kinds: [string, string, string][] = [
    [
      "c2",
      "ServiceAccount",
      `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"c2-data-upload-agent"}}`,
    ],
    [
      "c3",
      "Role",
      `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"c3-data-upload-agent"},"rules":[]}`,
    ],
    [
      "c4",
      "RoleBinding",
      `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"c4-data-upload-agent"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"x"},"subjects":[]}`,
    ],
  ];
  for (const [name, , yaml] of kinds) {
    applyYaml(ns, yaml);
    applyYaml(ns, device(name, external));
  }
  for (const [name, kindName] of kinds) {
    const ready = await conditionWhere(ns, name, "NameConflict");
    assert.match(ready.message, new RegExp(`${kindName} ${ns}/${name}-data-upload-agent`));
    const obj = kubectlJson<Meta>([
      "get",
      kindName.toLowerCase(),
      `${name}-data-upload-agent`,
      "-n",
      ns,
    ]);
    assert.is(obj.metadata.ownerReferences, undefined, `${kindName} was taken over`);
  }
});

test("someone else's ObjectBucketClaim named like the device is not used", async () => {
  applyYaml(
    ns,
    `{"apiVersion":"objectbucket.io/v1alpha1","kind":"ObjectBucketClaim","metadata":{"name":"c5"},"spec":{"generateBucketName":"theirs","storageClassName":"other"}}`,
  );
  applyYaml(ns, device("c5", "{ configMapName: ext, secretName: ext, createOBC: true }"));
  const ready = await conditionWhere(ns, "c5", "NameConflict");
  assert.match(ready.message, new RegExp(`ObjectBucketClaim ${ns}/c5`));
  // The device's own storage still reaches its config; the claim keeps its owner's settings.
  await configWhere(ns, "c5", "external storage", c => c.storage?.bucket === "ext-bucket");
  const claim = kubectlJson<Meta & { spec: { storageClassName: string } }>([
    "get",
    "objectbucketclaim",
    "c5",
    "-n",
    ns,
  ]);
  assert.is(claim.spec.storageClassName, "other");
  assert.is(claim.metadata.labels?.["app.kubernetes.io/managed-by"], undefined);
});

test.run();

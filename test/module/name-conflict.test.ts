/**
 * No takeovers: an object with one of the module's names for a device (its config Secret, its
 * ServiceAccount, Role or RoleBinding, its ObjectBucketClaim) that the module does not own is
 * left alone, and the device says so: Ready=False, reason NameConflict, naming the object.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { deviceConfigSecretName } from "../../agent/config/device-config";
import {
  DEVICE_ANNOTATION,
  DEVICE_LABEL,
  deviceAccessName,
} from "../../capabilities/device-resources";
import {
  applyYaml,
  conditionWhere,
  configWhere,
  deviceConfig,
  namespaceWithExternalStorage,
} from "../support/devices";
import { eventually } from "../support/eventually";
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
  // The device's Role exists (it still reports status) but never grants someone else's Secret.
  const agent = `system:serviceaccount:${ns}:c1-data-upload-agent`;
  const canRead = () =>
    kubectl([
      "auth",
      "can-i",
      "get",
      "secret/c1-data-upload",
      "-n",
      ns,
      "--as",
      agent,
    ]).stdout.trim();
  await eventually("the device's Role", () =>
    kubectl(["get", "role", "c1-data-upload-agent", "-n", ns]).status === 0 ? true : undefined,
  );
  assert.is(canRead(), "no");
  const role = kubectlJson<{ rules: { resources: string[] }[] }>([
    "get",
    "role",
    "c1-data-upload-agent",
    "-n",
    ns,
  ]);
  assert.not.ok(
    role.rules.some(r => r.resources.includes("secrets")),
    "no rule on secrets",
  );
  // Removed by its owner, the name is free: the module writes it, and grants it, unprompted.
  kubectlOk(["delete", "secret", "c1-data-upload", "-n", ns]);
  await configWhere(ns, "c1", "external storage", c => c.storage?.bucket === "ext-bucket");
  await conditionWhere(ns, "c1", "ExternalBucket");
  await eventually("the grant of its own config", () => (canRead() === "yes" ? true : undefined));
});

test("a device name of 253 characters: bounded names and labels, the full name annotated", async () => {
  const name = `long-${"x".repeat(243)}-name`;
  assert.is(name.length, 253);
  applyYaml(ns, device(name, external));
  await conditionWhere(ns, name, "ExternalBucket", "Ready", 20_000);
  const secretName = deviceConfigSecretName(name);
  assert.ok(secretName.length <= 253 && secretName.endsWith("-data-upload"), secretName);
  const config = deviceConfig(ns, name)!;
  assert.is(config.device.name, name);
  const accessName = deviceAccessName(name);
  for (const kind of ["secret", "serviceaccount", "role", "rolebinding"]) {
    const obj = kubectlJson<{
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
    }>(["get", kind, kind === "secret" ? secretName : accessName, "-n", ns]);
    assert.is(obj.metadata.annotations[DEVICE_ANNOTATION], name, kind);
    assert.ok(obj.metadata.labels[DEVICE_LABEL].length <= 63, kind);
  }
  const agent = `system:serviceaccount:${ns}:${accessName}`;
  assert.is(
    kubectl([
      "auth",
      "can-i",
      "get",
      `secret/${secretName}`,
      "-n",
      ns,
      "--as",
      agent,
    ]).stdout.trim(),
    "yes",
  );
});

test("a key prefix that expands past 512 characters: a condition names it, not a retry loop", async () => {
  const name = `prefix-${"y".repeat(200)}`;
  applyYaml(
    ns,
    `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: ${name} }
spec: { storage: { keyPrefix: "{device}/{device}/{device}", s3: ${external} } }
`,
  );
  const valid = await conditionWhere(ns, name, "InvalidKeyPrefix", "KeyPrefixValid", 20_000);
  assert.is(valid.status, "False");
  assert.match(
    valid.message,
    /spec\.storage\.keyPrefix: expands to 623 characters for this device; at most 512/,
  );
  await configWhere(
    ns,
    name,
    "the storage, with no key prefix",
    c => c.keyPrefix === "" && !!c.storage,
  );
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

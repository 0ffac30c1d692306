/**
 * Device access: the kubeconfig `npm run device-kubeconfig` mints for device A reads A's config
 * and patches A's status, and is forbidden on B's config, on other Secrets and on B's status.
 * Deleting a device removes its config Secret, ServiceAccount, Role and RoleBinding, and keeps
 * its ObjectBucketClaim (and so its bucket).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyYaml, configWhere, s3Objects } from "../support/devices";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("access");
const dir = mkdtempSync(join(tmpdir(), "access-"));
const kubeconfigA = join(dir, "a.kubeconfig");
const asA = (args: string[]) => kubectl(["--kubeconfig", kubeconfigA, ...args]);
/** What the agent does to report: a merge patch of the device's status. */
const patchStatusArgs = (device: string) => [
  "patch",
  "edgedevice",
  device,
  "-n",
  ns,
  "--subresource=status",
  "--type=merge",
  "-p",
  '{"status":{"dataUpload":{"filesSent":1}}}',
];
const device = (name: string) => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: ${name} }
spec: { storage: { s3: { configMapName: s3, secretName: s3, createOBC: true } } }
`;

test.before(async () => {
  kubectlOk(["create", "namespace", ns]);
  applyYaml(ns, s3Objects(ns, "s3", "bucket-a", new URL(testEnv.s3.endpoint), testEnv.s3));
  applyYaml(ns, device("dev-a") + "---" + device("dev-b"));
  await configWhere(ns, "dev-a", "written", () => true);
  await configWhere(ns, "dev-b", "written", () => true);
  const minted = spawnSync(
    "npm",
    ["run", "-s", "device-kubeconfig", "--", `${ns}/dev-a`, "--output", kubeconfigA],
    { encoding: "utf8" },
  );
  assert.is(minted.status, 0, minted.stderr);
});
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  rmSync(dir, { recursive: true, force: true });
});

test("the minted kubeconfig is private and names the device's ServiceAccount", () => {
  assert.is(statSync(kubeconfigA).mode & 0o777, 0o600);
  const who = asA(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
  assert.is(who.stdout, `system:serviceaccount:${ns}:dev-a-data-upload-agent`);
});

test("device A reads its own config and patches its own status", () => {
  assert.is(asA(["get", "secret", "dev-a-data-upload", "-n", ns, "-o", "name"]).status, 0);
  const patch = asA(patchStatusArgs("dev-a"));
  assert.is(patch.status, 0, patch.stderr);
});

test("device A is forbidden on B's config, other Secrets, and B's status", () => {
  for (const args of [
    ["get", "secret", "dev-b-data-upload", "-n", ns],
    ["get", "secret", "s3", "-n", ns],
    ["get", "secrets", "-n", ns],
    patchStatusArgs("dev-b"),
    ["get", "edgedevice", "dev-b", "-n", ns],
  ]) {
    const result = asA(args);
    assert.is.not(result.status, 0, `allowed: kubectl ${args.join(" ")}`);
    assert.match(result.stderr, /forbidden/i);
  }
});

test("device A may renew its own token, and no other", () => {
  const own = asA(["create", "token", "dev-a-data-upload-agent", "-n", ns, "--duration=10m"]);
  assert.is(own.status, 0, own.stderr);
  const other = asA(["create", "token", "dev-b-data-upload-agent", "-n", ns, "--duration=10m"]);
  assert.is.not(other.status, 0, "device A minted a token for device B");
  assert.match(other.stderr, /forbidden/i);
});

test("deleting a device removes its Secret, ServiceAccount, Role and RoleBinding, and keeps its claim", async () => {
  kubectlOk(["delete", "edgedevice", "dev-a", "-n", ns]);
  for (const [kind, name] of [
    ["secret", "dev-a-data-upload"],
    ["serviceaccount", "dev-a-data-upload-agent"],
    ["role", "dev-a-data-upload-agent"],
    ["rolebinding", "dev-a-data-upload-agent"],
  ]) {
    await eventually(
      `${kind} ${name} to be gone`,
      () => (kubectl(["get", kind, name, "-n", ns]).status !== 0 ? true : undefined),
      30_000,
    );
  }
  assert.is(kubectl(["get", "objectbucketclaim", "dev-a", "-n", ns]).status, 0);
  // The API server caches token reviews for a few seconds; after that the token is refused.
  await eventually(
    "the deleted device's token to be refused",
    () =>
      /Unauthorized|must be logged in/.test(
        asA(["get", "secret", "dev-b-data-upload", "-n", ns]).stderr,
      )
        ? true
        : undefined,
    30_000,
  );
});

test.run();

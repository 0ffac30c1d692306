/**
 * kube-controller-manager is running the controllers the module relies on: deleting an owner
 * removes what it owns; a namespace finishes deleting; new namespaces get their root CA.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { eventually } from "../support/eventually";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("gc");

test.before(() => {
  kubectlOk(["create", "namespace", ns]);
});

test("deleting an owner removes the object that has an ownerReference to it", async () => {
  kubectlOk(["create", "configmap", "owner", "-n", ns, "--from-literal=a=b"]);
  const uid = kubectlOk(["get", "configmap", "owner", "-n", ns, "-o", "jsonpath={.metadata.uid}"]);
  kubectlOk(["apply", "-n", ns, "-f", "-"], {
    input: `
apiVersion: v1
kind: Secret
metadata:
  name: owned
  ownerReferences:
    - { apiVersion: v1, kind: ConfigMap, name: owner, uid: ${uid} }
stringData: { a: b }
`,
  });
  assert.is(kubectl(["get", "secret", "owned", "-n", ns]).status, 0);
  kubectlOk(["delete", "configmap", "owner", "-n", ns]);
  await eventually("the owned Secret to be garbage-collected", () =>
    kubectl(["get", "secret", "owned", "-n", ns]).status !== 0 ? true : undefined,
  );
});

test("a new namespace gets its default ServiceAccount and root CA ConfigMap", async () => {
  await eventually("default ServiceAccount", () =>
    kubectl(["get", "serviceaccount", "default", "-n", ns]).status === 0 ? true : undefined,
  );
  await eventually("kube-root-ca.crt", () =>
    kubectl(["get", "configmap", "kube-root-ca.crt", "-n", ns]).status === 0 ? true : undefined,
  );
});

test("a deleted namespace goes away (the namespace controller finalizes it)", async () => {
  kubectlOk(["delete", "namespace", ns, "--wait=false"]);
  await eventually(
    "the namespace to be gone",
    () => (kubectl(["get", "namespace", ns]).status !== 0 ? true : undefined),
    60_000,
  );
});

test.run();

/**
 * RBAC and service-account tokens are real: a TokenRequest token bound to a Role that may get
 * one named Secret reads it, and is refused on a second Secret and on listing.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("rbac");
let token = "";

test.before(() => {
  kubectlOk(["create", "namespace", ns]);
  kubectlOk(["apply", "-n", ns, "-f", "-"], {
    input: `
apiVersion: v1
kind: Secret
metadata: { name: mine }
stringData: { value: "for the device" }
---
apiVersion: v1
kind: Secret
metadata: { name: theirs }
stringData: { value: "not for the device" }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: device }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: device }
rules:
  - apiGroups: [""]
    resources: [secrets]
    resourceNames: [mine]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: device }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: device }
subjects:
  - { kind: ServiceAccount, name: device, namespace: ${ns} }
`,
  });
  token = kubectlOk(["create", "token", "device", "-n", ns, "--duration=10m"]).trim();
});

test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("a TokenRequest token authenticates as its ServiceAccount", () => {
  const who = kubectlOk(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], {
    token,
  });
  assert.is(who, `system:serviceaccount:${ns}:device`);
});

test("the token reads the one Secret its Role names", () => {
  const value = kubectlOk(["get", "secret", "mine", "-n", ns, "-o", "jsonpath={.data.value}"], {
    token,
  });
  assert.is(Buffer.from(value, "base64").toString(), "for the device");
});

test("the token is refused on another Secret and on listing", () => {
  const other = kubectl(["get", "secret", "theirs", "-n", ns], { token });
  assert.is.not(other.status, 0);
  assert.match(other.stderr, /Forbidden|forbidden/);
  const list = kubectl(["get", "secrets", "-n", ns], { token });
  assert.is.not(list.status, 0);
  assert.match(list.stderr, /forbidden/);
});

test("a made-up token is refused", () => {
  const result = kubectl(["get", "secret", "mine", "-n", ns], { token: "not-a-token" });
  assert.is.not(result.status, 0);
  assert.match(result.stderr, /Unauthorized|must be logged in/);
});

test.run();

/**
 * The module guard (dist/module-guard-<uuid>.yaml, a ValidatingAdmissionPolicy): with the running
 * module's own token, an attacker who took over the module tries what its rules would allow and
 * the guard refuses. What the module does itself still passes (every other module test).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("guard");
let token = "";

/** kubectl as the module's ServiceAccount: must be refused by the guard, saying `why`. */
function refused(args: string[], why: RegExp, input?: string): void {
  const r = kubectl(args, { token, input });
  assert.is.not(r.status, 0, `allowed: kubectl ${args.join(" ")}`);
  assert.match(r.stderr, /ValidatingAdmissionPolicy 'pepr-[0-9a-f-]+-guard' .*denied request/);
  assert.match(r.stderr, why);
}

test.before(() => {
  // A token of the module's ServiceAccount, as its pods hold one (projected into each).
  const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
    .uuid;
  token = kubectlOk([
    "create",
    "token",
    `pepr-${uuid}`,
    "-n",
    "pepr-system",
    "--duration=1h",
  ]).trim();
  kubectlOk(["create", "namespace", ns]);
  kubectlOk(["create", "serviceaccount", "someone", "-n", ns]);
  kubectlOk(["create", "secret", "generic", "theirs", "-n", ns, "--from-literal=k=v"]);
  // A Role the module could bind as far as RBAC goes (it holds every rule in it).
  kubectlOk([
    "create",
    "role",
    "dev-data-upload-agent",
    "-n",
    ns,
    "--verb=get",
    "--resource=secrets",
  ]);
});
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("the module's token is the module's, and RBAC alone would let it do all below", () => {
  const who = kubectlOk(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], {
    token,
  });
  assert.match(who, /^system:serviceaccount:pepr-system:pepr-/);
  for (const verb of [
    "create serviceaccounts/token",
    "create secrets",
    "patch secrets",
    "create rolebindings",
  ]) {
    const [v, resource] = verb.split(" ");
    const r = kubectl(["auth", "can-i", v, resource, "-n", ns], { token });
    assert.is(r.stdout.trim(), "yes", `RBAC: ${verb}`);
  }
});

test("it mints no token, for any ServiceAccount", () => {
  refused(["create", "token", "someone", "-n", ns], /never mints tokens/);
});

test("it writes no Secret without its label, takes none over, makes no token Secret", () => {
  refused(
    ["create", "secret", "generic", "x", "-n", ns, "--from-literal=k=v"],
    /only objects labelled/,
  );
  refused(
    ["label", "secret", "theirs", "-n", ns, "app.kubernetes.io/managed-by=edge-data-upload"],
    /changes only objects it already manages/,
  );
  refused(
    ["apply", "-n", ns, "-f", "-"],
    /only Opaque Secrets/,
    `{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/service-account-token","metadata":{"name":"tok","labels":{"app.kubernetes.io/managed-by":"edge-data-upload"},"annotations":{"kubernetes.io/service-account.name":"someone"}}}`,
  );
  kubectlOk(["apply", "-n", ns, "-f", "-"], {
    token,
    input: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"mine","labels":{"app.kubernetes.io/managed-by":"edge-data-upload"}},"stringData":{"k":"v"}}`,
  });
  // Deleting is not even in its rules (garbage collection deletes a device's objects).
  const del = kubectl(["delete", "secret", "mine", "-n", ns], { token });
  assert.match(del.stderr, /cannot delete resource "secrets"/);
});

test("it binds nothing but a device's Role to that device's ServiceAccount", () => {
  const binding = (subject: string) =>
    `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"dev-data-upload-agent","labels":{"app.kubernetes.io/managed-by":"edge-data-upload"}},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"dev-data-upload-agent"},"subjects":[${subject}]}`;
  refused(
    ["create", "-n", ns, "-f", "-"],
    /binds only a device's Role/,
    binding(
      `{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"system:authenticated"}`,
    ),
  );
  refused(
    ["create", "-n", ns, "-f", "-"],
    /binds only a device's Role/,
    binding(`{"kind":"ServiceAccount","name":"someone","namespace":"${ns}"}`),
  );
});

test("it names accounts and bindings only for devices, and grants a device nothing more", () => {
  const labels = `"labels":{"app.kubernetes.io/managed-by":"edge-data-upload"}`;
  // Secret reads for a namespace's default ServiceAccount, through objects named "default"
  // (a Role an admin made, which the module could bind as far as RBAC goes).
  kubectlOk(["create", "role", "default", "-n", ns, "--verb=get", "--resource=secrets"]);
  refused(
    ["create", "-n", ns, "-f", "-"],
    /names ServiceAccounts, Roles and RoleBindings only <device>-data-upload-agent/,
    `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"default",${labels}},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"default"},"subjects":[{"kind":"ServiceAccount","name":"default","namespace":"${ns}"}]}`,
  );
  const role = (name: string, rule: string) =>
    `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"${name}",${labels},"annotations":{"edge-data-upload.project-flotta.io/device-name":"dev"}},"rules":[${rule}]}`;
  refused(
    ["create", "-n", ns, "-f", "-"],
    /names ServiceAccounts, Roles and RoleBindings only/,
    role("default", `{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}`),
  );
  // Each rule below is one the module holds, so RBAC's escalation check lets it through.
  const grantsOnly = /grants a device only get\/watch of its own config Secret/;
  for (const rule of [
    `{"apiGroups":[""],"resources":["secrets"],"verbs":["get","list"]}`, // every Secret
    `{"apiGroups":[""],"resources":["secrets"],"resourceNames":["theirs"],"verbs":["get"]}`,
    `{"apiGroups":[""],"resources":["secrets"],"resourceNames":["x-data-upload"],"verbs":["get","patch"]}`,
    `{"apiGroups":["management.project-flotta.io"],"resources":["edgedevices/status"],"resourceNames":["another"],"verbs":["patch"]}`,
    `{"apiGroups":[""],"resources":["serviceaccounts/token"],"resourceNames":["someone"],"verbs":["create"]}`,
  ])
    refused(["create", "-n", ns, "-f", "-"], grantsOnly, role("x-data-upload-agent", rule));
  // What the module writes for device "dev" passes.
  kubectlOk(["create", "-n", ns, "-f", "-"], {
    token,
    input: role(
      "dev2-data-upload-agent",
      [
        `{"apiGroups":[""],"resources":["secrets"],"resourceNames":["dev2-data-upload"],"verbs":["get","watch"]}`,
        `{"apiGroups":["management.project-flotta.io"],"resources":["edgedevices"],"resourceNames":["dev"],"verbs":["get"]}`,
        `{"apiGroups":["management.project-flotta.io"],"resources":["edgedevices/status"],"resourceNames":["dev"],"verbs":["get","patch"]}`,
        `{"apiGroups":[""],"resources":["serviceaccounts/token"],"resourceNames":["dev2-data-upload-agent"],"verbs":["create"]}`,
      ].join(","),
    ),
  });
});

test.run();

/**
 * Writes dist/module-guard-<uuid>.yaml: a ValidatingAdmissionPolicy (and its binding) that
 * limits what the module's ServiceAccount may do with the rules it must hold. RBAC checks what a
 * ServiceAccount holds; this checks what it does:
 *   - no TokenRequest at all: the module holds `serviceaccounts/token: create` only because the
 *     device Role grants it, and RBAC lets a Role be created only by someone holding all of it;
 *   - Secrets, ServiceAccounts, Roles and RoleBindings: created and changed only when they carry
 *     the module's managed-by label before and after, never deleted (garbage collection
 *     deletes them with their device); Secrets only of type Opaque (no token Secrets);
 *   - a RoleBinding binds only the Role of its own name to the ServiceAccount of that name in
 *     its namespace (no grants to users, groups or other accounts), and that name is a device's
 *     (`<stem>-data-upload-agent`), as are the ServiceAccounts and Roles it writes;
 *   - a Role holds only a device agent's rules, each on one named object: `get`/`watch` of the
 *     device's config Secret (`<stem>-data-upload`, the Role's own name less `-agent`), `get` of
 *     its EdgeDevice and `get`/`patch` of its status (the device named in the Role's
 *     annotation), `create` of a token for its own ServiceAccount.
 * Run by hack/build-module.sh; apply it after `pepr deploy` (hack/module.sh does).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { DEVICE_ANNOTATION, MANAGED_BY } from "../capabilities/device-resources";

const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const user = `system:serviceaccount:pepr-system:pepr-${uuid}`;
const [label, value] = Object.entries(MANAGED_BY)[0];
const token = "(has(request.subResource) && request.subResource == 'token')";
const managed = (o: string) =>
  `has(${o}.metadata.labels) && '${label}' in ${o}.metadata.labels && ${o}.metadata.labels['${label}'] == '${value}'`;

const ACCESS_SUFFIX = "-data-upload-agent";
const deviceNamed = `object.metadata.name.endsWith('${ACCESS_SUFFIX}')`;
const one = "has(r.resourceNames) && size(r.resourceNames) == 1";
const device = `has(object.metadata.annotations) && '${DEVICE_ANNOTATION}' in object.metadata.annotations && r.resourceNames[0] == object.metadata.annotations['${DEVICE_ANNOTATION}']`;
const agentRules = [
  `(r.apiGroups == [''] && r.resources == ['secrets'] && r.verbs.all(v, v in ['get', 'watch']) && r.resourceNames[0] == object.metadata.name.substring(0, size(object.metadata.name) - 6))`,
  `(r.apiGroups == ['management.project-flotta.io'] && r.resources == ['edgedevices'] && r.verbs == ['get'] && ${device})`,
  `(r.apiGroups == ['management.project-flotta.io'] && r.resources == ['edgedevices/status'] && r.verbs.all(v, v in ['get', 'patch']) && ${device})`,
  `(r.apiGroups == [''] && r.resources == ['serviceaccounts/token'] && r.verbs == ['create'] && r.resourceNames[0] == object.metadata.name)`,
].join(" || ");

const policy = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "ValidatingAdmissionPolicy",
  metadata: { name: `pepr-${uuid}-guard` },
  spec: {
    failurePolicy: "Fail",
    matchConstraints: {
      resourceRules: [
        {
          apiGroups: [""],
          apiVersions: ["v1"],
          operations: ["CREATE"],
          resources: ["serviceaccounts/token"],
        },
        {
          apiGroups: [""],
          apiVersions: ["v1"],
          operations: ["CREATE", "UPDATE", "DELETE"],
          resources: ["secrets", "serviceaccounts"],
        },
        {
          apiGroups: ["rbac.authorization.k8s.io"],
          apiVersions: ["v1"],
          operations: ["CREATE", "UPDATE", "DELETE"],
          resources: ["roles", "rolebindings"],
        },
      ],
    },
    matchConditions: [{ name: "the-module", expression: `request.userInfo.username == '${user}'` }],
    validations: [
      {
        expression: `!${token}`,
        message: "the edge-data-upload module never mints tokens",
      },
      {
        expression: `${token} || (request.operation != 'DELETE' && ${managed("object")})`,
        message: `the edge-data-upload module writes only objects labelled ${label}=${value}, and deletes none`,
      },
      {
        expression: `request.operation != 'UPDATE' || (${managed("oldObject")})`,
        message: "the edge-data-upload module changes only objects it already manages",
      },
      {
        expression:
          "request.resource.resource != 'secrets' || request.operation == 'DELETE' || (has(object.type) && object.type == 'Opaque')",
        message: "the edge-data-upload module writes only Opaque Secrets",
      },
      {
        expression:
          "request.resource.resource != 'rolebindings' || request.operation == 'DELETE' || (object.roleRef.kind == 'Role' && object.roleRef.name == object.metadata.name && has(object.subjects) && object.subjects.all(s, s.kind == 'ServiceAccount' && s.name == object.metadata.name && has(s.namespace) && s.namespace == object.metadata.namespace))",
        message:
          "the edge-data-upload module binds only a device's Role to that device's ServiceAccount",
      },
      {
        expression: `!(request.resource.resource in ['serviceaccounts', 'roles', 'rolebindings']) || request.operation == 'DELETE' || ${deviceNamed}`,
        message: `the edge-data-upload module names ServiceAccounts, Roles and RoleBindings only <device>${ACCESS_SUFFIX}`,
      },
      {
        expression: `request.resource.resource != 'roles' || request.operation == 'DELETE' || (has(object.rules) && object.rules.all(r, ${one} && (${agentRules})))`,
        message:
          "the edge-data-upload module grants a device only get/watch of its own config Secret, its EdgeDevice and status, and its own token",
      },
    ],
  },
};

const binding = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "ValidatingAdmissionPolicyBinding",
  metadata: { name: `pepr-${uuid}-guard` },
  spec: { policyName: policy.metadata.name, validationActions: ["Deny"] },
};

const path = `dist/module-guard-${uuid}.yaml`;
writeFileSync(path, [policy, binding].map(o => JSON.stringify(o, null, 2)).join("\n---\n") + "\n");
process.stderr.write(`wrote ${path}\n`);

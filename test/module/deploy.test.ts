/**
 * The deployable module: `pepr build` output (scoped RBAC with the module's rules, webhooks,
 * controller) is accepted by the real API server (server-side dry run), after the CRDs.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { kubectl } from "../support/kubectl";

// While these tests run, `pepr dev` owns the module's webhook configurations: the dry run uses
// the same manifest under another module id, so it is checked as a fresh install would be.
const OTHER_ID = "00000000-0000-4000-8000-000000000000";

const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const manifest = `dist/pepr-module-${uuid}.yaml`;

test("the built manifest applies with --dry-run=server", () => {
  const yaml = readFileSync(manifest, "utf8").split(uuid).join(OTHER_ID);
  const result = kubectl(["apply", "--dry-run=server", "-f", "-"], { input: yaml });
  assert.is(result.status, 0, result.stderr);
  const created = (what: string) =>
    new RegExp(`${what}/pepr-${OTHER_ID}\\S* created \\(server dry run\\)`);
  assert.match(result.stdout, created("clusterrole.rbac.authorization.k8s.io"));
  assert.match(result.stdout, created("mutatingwebhookconfiguration.admissionregistration.k8s.io"));
  assert.match(
    result.stdout,
    created("validatingwebhookconfiguration.admissionregistration.k8s.io"),
  );
  assert.match(result.stdout, created("deployment.apps"));
});

test("its ClusterRole is scoped and grants what the module's callbacks do", () => {
  const text = readFileSync(manifest, "utf8");
  assert.not.match(text, /resources:\s*\n\s*- '\*'/, "admin-mode wildcard rules");
  for (const needle of [
    "edgedevices/status",
    "objectbucketclaims",
    "rolebindings",
    "serviceaccounts",
    "events",
  ]) {
    assert.ok(text.includes(needle), `no rule for ${needle}`);
  }
});

test.run();

/**
 * The built module deployed as `pepr deploy` deploys it (used by hack/module.sh):
 *
 *   tsx hack/module-deploy.ts apply IMAGE   applies, as the admin who deploys, every object
 *       `pepr build` wrote (namespace, ServiceAccounts, scoped RBAC, Secrets, Deployments, their
 *       Services, webhook configurations) and the module guard, with one change: the Deployments'
 *       image is IMAGE, the controller image built here (no registry can be reached).
 *       EDGE_UPLOAD_* variables set here override the manifest's settings, and
 *       EDGE_MODULE_LOG_LEVEL its LOG_LEVEL, in the Deployments' environment (as
 *       `kubectl set env deployment/...` would).
 *   tsx hack/module-deploy.ts undeploy      deletes the webhook configurations and the
 *       Deployments (their pods go); the namespace, RBAC and Secrets stay for the next apply.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
}
interface Deployment extends Manifest {
  spec: { template: { spec: { containers: { image: string; env?: EnvVar[] }[] } } };
}

const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const MODULE_NAMESPACE = "pepr-system";

function kubectl(args: string[], input?: string): string {
  return execFileSync("kubectl", args, {
    input,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "inherit"],
  });
}

const apply = (objects: unknown[]) =>
  kubectl(
    [
      "apply",
      "--server-side",
      "--force-conflicts",
      "--field-manager=pepr-deploy",
      "-o",
      "name",
      "-f",
      "-",
    ],
    objects.map(o => JSON.stringify(o)).join("\n"),
  );

const loadAll = (path: string) =>
  (yaml.loadAll(readFileSync(path, "utf8")) as Manifest[]).filter(Boolean);

/** The Deployment as this run deploys it: the local image, this shell's setting overrides. */
function localDeployment(deployment: Deployment, image: string): Deployment {
  for (const container of deployment.spec.template.spec.containers) {
    container.image = image;
    const env = new Map((container.env ?? []).map(v => [v.name, v.value ?? ""]));
    for (const [name, value] of Object.entries(process.env))
      if (value !== undefined && name.startsWith("EDGE_UPLOAD_")) env.set(name, value);
    if (process.env.EDGE_MODULE_LOG_LEVEL) env.set("LOG_LEVEL", process.env.EDGE_MODULE_LOG_LEVEL);
    container.env = [...env].map(([name, value]) => ({ name, value }));
  }
  return deployment;
}

function applyModule(image: string): void {
  const docs = loadAll(`dist/pepr-module-${uuid}.yaml`).map(d =>
    d.kind === "Deployment" ? localDeployment(d as Deployment, image) : d,
  );
  if (docs.filter(d => d.kind === "Deployment").length !== 2)
    throw new Error("the manifest has not the admission and watcher Deployments");
  apply(docs);
  apply(loadAll(`dist/module-guard-${uuid}.yaml`)); // what the module may do with its rules
}

function undeploy(): void {
  kubectl([
    "delete",
    "mutatingwebhookconfiguration,validatingwebhookconfiguration",
    `pepr-${uuid}`,
    "--ignore-not-found",
  ]);
  kubectl([
    "delete",
    "deployment",
    "-n",
    MODULE_NAMESPACE,
    `pepr-${uuid}`,
    `pepr-${uuid}-watcher`,
    "--ignore-not-found",
  ]);
}

const [command, image] = process.argv.slice(2);
if (command === "apply" && image) applyModule(image);
else if (command === "undeploy") undeploy();
else {
  process.stderr.write("usage: module-deploy.ts apply IMAGE | undeploy\n");
  process.exit(2);
}

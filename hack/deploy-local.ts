/**
 * Runs what `pepr build` wrote the way `pepr deploy` and Pepr's controller image run it, without
 * a container runtime. Used by hack/module.sh.
 *
 *   tsx hack/deploy-local.ts prepare DIR PKI   applies the manifest's namespace, ServiceAccount and
 *       scoped RBAC and the module guard (as the admin who deploys), then as the module's ServiceAccount applies the
 *       PeprStore CRD (as the controller does at start); unpacks the module code from its Secret
 *       and checks it against the hash the Deployments give; mints a token for the
 *       ServiceAccount into DIR/kubeconfig; writes DIR/processes.json: per process (admission,
 *       watcher) the environment its Deployment sets.
 *   tsx hack/deploy-local.ts webhooks PKI   applies the manifest's webhook configurations, pointed
 *       at the admission process on 127.0.0.1 (serving PKI/module.crt) instead of the Service.
 *   tsx hack/deploy-local.ts undeploy      deletes the webhook configurations.
 *
 * EDGE_UPLOAD_* variables given here override the manifest's settings, and EDGE_MODULE_LOG_LEVEL
 * its LOG_LEVEL (as `kubectl set env deployment/...` would).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import yaml from "js-yaml";
import { peprStoreCRD } from "pepr/src/lib/assets/store";

/** Where each process listens: its own port, as each pod has its own address. */
export const PORTS = { admission: 3000, watcher: 3001 } as const;

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
  spec: {
    template: {
      spec: {
        serviceAccountName: string;
        containers: { args: string[]; env?: EnvVar[] }[];
      };
    };
  };
}
interface WebhookConfiguration extends Manifest {
  webhooks: { clientConfig: { caBundle?: string; service?: { path?: string }; url?: string } }[];
}

const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const MODULE_NAMESPACE = "pepr-system";

function kubectl(args: string[], input?: string, kubeconfig?: string): string {
  return execFileSync("kubectl", args, {
    input,
    encoding: "utf8",
    env: kubeconfig ? { ...process.env, KUBECONFIG: kubeconfig } : process.env,
    stdio: ["pipe", "pipe", "inherit"],
  });
}

const apply = (objects: unknown[], kubeconfig?: string) =>
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
    kubeconfig,
  );

function readManifest(): Manifest[] {
  const text = readFileSync(`dist/pepr-module-${uuid}.yaml`, "utf8");
  return (yaml.loadAll(text) as Manifest[]).filter(Boolean);
}

const byKind = (docs: Manifest[], kind: string) => docs.filter(d => d.kind === kind);

/** The module's code from its Secret, as the controller loads it: gunzipped, hash checked. */
function unpackModule(docs: Manifest[], hash: string, dir: string): string {
  const secret = docs.find(d => d.kind === "Secret" && d.metadata.name === `pepr-${uuid}-module`);
  const data = (secret as { data?: Record<string, string> } | undefined)?.data ?? {};
  const gz = data[`module-${hash}.js.gz`];
  if (!gz) throw new Error(`the module Secret has no module-${hash}.js.gz`);
  const code = gunzipSync(Buffer.from(gz, "base64"));
  const actual = createHash("sha256").update(code).digest("hex");
  if (actual !== hash) throw new Error(`module hash ${actual} is not the Deployments' ${hash}`);
  const path = join(dir, `module-${hash}.js`);
  writeFileSync(path, code);
  return path;
}

/** A kubeconfig for the module's ServiceAccount: the admin's cluster, a TokenRequest token. */
function serviceAccountKubeconfig(serviceAccount: string, dir: string): string {
  const token = kubectl([
    "create",
    "token",
    serviceAccount,
    "-n",
    MODULE_NAMESPACE,
    "--duration=48h",
  ]).trim();
  const cluster = JSON.parse(kubectl(["config", "view", "--raw", "--minify", "-o", "json"])) as {
    clusters: { cluster: Record<string, string> }[];
  };
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "cluster", cluster: cluster.clusters[0].cluster }],
    users: [{ name: serviceAccount, user: { token } }],
    contexts: [{ name: "module", context: { cluster: "cluster", user: serviceAccount } }],
    "current-context": "module",
  };
  const path = join(dir, "kubeconfig");
  writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
  return path;
}

/** The environment a Deployment gives its container, with this shell's overrides. */
function processEnv(deployment: Deployment): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of deployment.spec.template.spec.containers[0].env ?? [])
    env[v.name] = v.value ?? "";
  for (const [name, value] of Object.entries(process.env))
    if (value !== undefined && name.startsWith("EDGE_UPLOAD_")) env[name] = value;
  if (process.env.EDGE_MODULE_LOG_LEVEL) env.LOG_LEVEL = process.env.EDGE_MODULE_LOG_LEVEL;
  return env;
}

function prepare(dir: string, pki: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const docs = readManifest();
  const access = [
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
  ];
  apply(docs.filter(d => access.includes(d.kind)));
  // What the module does with those rules (hack/module-guard.ts), as a user applies it.
  apply(yaml.loadAll(readFileSync(`dist/module-guard-${uuid}.yaml`, "utf8")).filter(Boolean));
  const deployments = byKind(docs, "Deployment") as Deployment[];
  const watcher = deployments.find(d => d.metadata.name.endsWith("-watcher"));
  const admission = deployments.find(d => !d.metadata.name.endsWith("-watcher"));
  if (!watcher || !admission)
    throw new Error("the manifest has no watcher and admission Deployments");
  const [, hash] = admission.spec.template.spec.containers[0].args;
  const kubeconfig = serviceAccountKubeconfig(admission.spec.template.spec.serviceAccountName, dir);
  apply([peprStoreCRD], kubeconfig); // the controller's first step, with the module's rights
  const modulePath = unpackModule(docs, hash, dir);
  const apiPathSecret = docs.find(d => d.metadata.name === `pepr-${uuid}-api-path`) as
    | { data: { value: string } }
    | undefined;
  if (!apiPathSecret) throw new Error("the manifest has no api-path Secret");
  const common = {
    KUBECONFIG: kubeconfig,
    SSL_CERT_PATH: join(pki, "module.crt"),
    SSL_KEY_PATH: join(pki, "module.key"),
  };
  const processes = {
    module: modulePath,
    admission: {
      port: PORTS.admission,
      env: {
        ...processEnv(admission),
        ...common,
        PEPR_API_PATH: Buffer.from(apiPathSecret.data.value, "base64").toString("utf8"),
      },
    },
    watcher: { port: PORTS.watcher, env: { ...processEnv(watcher), ...common } },
  };
  writeFileSync(join(dir, "processes.json"), JSON.stringify(processes), { mode: 0o600 });
}

function webhooks(pki: string): void {
  const caBundle = readFileSync(join(pki, "ca.crt")).toString("base64");
  const configs = [
    ...byKind(readManifest(), "MutatingWebhookConfiguration"),
    ...byKind(readManifest(), "ValidatingWebhookConfiguration"),
  ] as WebhookConfiguration[];
  for (const config of configs)
    for (const hook of config.webhooks) {
      const path = hook.clientConfig.service?.path ?? "";
      hook.clientConfig = { url: `https://127.0.0.1:${PORTS.admission}${path}`, caBundle };
    }
  apply(configs);
}

function undeploy(): void {
  kubectl([
    "delete",
    "mutatingwebhookconfiguration,validatingwebhookconfiguration",
    `pepr-${uuid}`,
    "--ignore-not-found",
  ]);
}

const [command, dir, pki] = process.argv.slice(2);
if (command === "prepare" && dir && pki) prepare(dir, pki);
else if (command === "webhooks" && dir) webhooks(dir);
else if (command === "undeploy") undeploy();
else {
  process.stderr.write("usage: deploy-local.ts prepare DIR PKI | webhooks PKI | undeploy\n");
  process.exit(2);
}

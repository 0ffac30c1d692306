/**
 * Claim buckets behind an in-cluster Service, as NooBaa and Rook write them (the test OBC
 * provisioner writes BUCKET_HOST s3.openshift-storage.svc:443). Without a way out the device is
 * told what to set and external storage keeps serving; with the module setting or, on
 * OpenShift, the `s3` Route (a fake Route CRD here), the device's config names an endpoint it
 * can reach, and the agent uploads into the claim's bucket through it.
 *
 * The Route case listens on 127.0.0.1:443 (the router's port), in front of the S3 TLS server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DeviceConfig } from "../../agent/config/device-config";
import { runAgent } from "../support/agent-cli";
import { tempDir } from "../support/device-files";
import {
  applyYaml,
  condition,
  conditionWhere,
  configWhere,
  namespaceWithExternalStorage,
} from "../support/devices";
import { testEnv } from "../support/env";
import { startTcpProxy, type TcpProxy } from "../support/fault-proxy";
import { kubectl, kubectlOk } from "../support/kubectl";
import { restartModule } from "../support/module";
import { uniqueName } from "../support/names";
import { getObject } from "../support/s3";

const ns = uniqueName("e2e-endpoint");
const noEndpoint = { EDGE_UPLOAD_OBC_ENDPOINT: undefined, EDGE_UPLOAD_OBC_CA: undefined };
let root = "";
let router: TcpProxy | undefined;

const ROUTE_CRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: routes.route.openshift.io }
spec:
  group: route.openshift.io
  scope: Namespaced
  names: { plural: routes, singular: route, kind: Route }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`;

const device = (name: string, storage: string) => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: ${name}, labels: { dc: home } }
spec: { storage: { s3: ${storage} } }
`;

/** The agent, given the config the module wrote, uploads one file; returns the object's bytes. */
async function uploadThrough(config: DeviceConfig, name: string): Promise<string> {
  const dir = join(root, name);
  const volumes = join(dir, "volumes");
  await mkdir(join(volumes, "os-stats", "stats"), { recursive: true });
  await writeFile(join(volumes, "os-stats", "stats", "hello.txt"), `hello from ${name}`);
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  const run = await runAgent([
    "sync",
    "--once",
    "--config",
    join(dir, "config.json"),
    "--volumes-dir",
    volumes,
    "--state-dir",
    join(dir, "state"),
  ]);
  assert.is(run.status, 0, run.stderr);
  return (await getObject(config.storage!.bucket, "statistics/hello.txt")).toString();
}

test.before(async () => {
  root = await tempDir("e2e-endpoint");
  namespaceWithExternalStorage(ns);
  kubectlOk(["apply", "-n", ns, "-f", "manifests/samples/os-stats-workload.yaml"]);
});

test.after(async () => {
  await router?.stop();
  kubectl(["delete", "crd", "routes.route.openshift.io", "--ignore-not-found", "--wait=false"]);
  kubectl([
    "delete",
    "namespace",
    ns,
    "openshift-storage",
    "openshift-ingress-operator",
    "--wait=false",
  ]);
  restartModule(); // back to the test run's settings
  await rm(root, { recursive: true, force: true });
});

test("the setting: the claim's bucket through EDGE_UPLOAD_OBC_ENDPOINT", async () => {
  // The test run starts the module with the setting (hack/test.sh).
  assert.ok(process.env.EDGE_UPLOAD_OBC_ENDPOINT, "the run sets EDGE_UPLOAD_OBC_ENDPOINT");
  applyYaml(ns, device("by-setting", "{ createOBC: true }"));
  const config = await configWhere(
    ns,
    "by-setting",
    "claim bucket",
    c => c.storage?.kind === "ocs",
    30_000,
  );
  assert.is(config.storage!.endpoint, `${process.env.EDGE_UPLOAD_OBC_ENDPOINT}`);
  assert.is(
    condition(ns, "by-setting", "BucketClaimReady")?.message?.includes("EDGE_UPLOAD_OBC_ENDPOINT"),
    true,
  );
  assert.is(await uploadThrough(config, "by-setting"), "hello from by-setting");
});

test("an in-cluster host and no way out: the condition says what to set; external storage keeps serving", async () => {
  restartModule(noEndpoint);
  applyYaml(ns, device("only-claim", "{ createOBC: true }"));
  applyYaml(ns, device("both", "{ createOBC: true, configMapName: ext, secretName: ext }"));
  const stuck = await conditionWhere(ns, "only-claim", "ObcEndpointInCluster", "Ready", 30_000);
  assert.match(stuck.message ?? "", /s3\.openshift-storage\.svc/);
  assert.match(stuck.message ?? "", /EDGE_UPLOAD_OBC_ENDPOINT/);
  const claim = await conditionWhere(
    ns,
    "both",
    "ObcEndpointInCluster",
    "BucketClaimReady",
    30_000,
  );
  assert.is(claim.status, "False");
  const ready = await conditionWhere(ns, "both", "ExternalBucket");
  assert.is(ready.status, "True");
  await configWhere(ns, "both", "external storage", c => c.storage?.bucket === "ext-bucket");
});

test("OpenShift: the `s3` Route and the router CA are found without a setting", async () => {
  router = await startTcpProxy(Number(new URL(testEnv.s3.tlsEndpoint).port), 443).catch(err => {
    throw new Error(`this test listens on 127.0.0.1:443 as the router does (root): ${err}`);
  });
  const routerCa = readFileSync(testEnv.s3.tlsCaFile, "utf8");
  kubectlOk(["apply", "-f", "-"], { input: ROUTE_CRD });
  kubectlOk(["wait", "--for=condition=Established", "crd/routes.route.openshift.io"]);
  for (const n of ["openshift-storage", "openshift-ingress-operator"])
    kubectl(["create", "namespace", n]);
  applyYaml(
    "openshift-storage",
    `{"apiVersion":"route.openshift.io/v1","kind":"Route","metadata":{"name":"s3"},"spec":{"host":"localhost","tls":{"termination":"reencrypt"},"to":{"kind":"Service","name":"s3"}}}`,
  );
  kubectlOk([
    "create",
    "secret",
    "generic",
    "router-ca",
    "-n",
    "openshift-ingress-operator",
    `--from-file=tls.crt=${testEnv.s3.tlsCaFile}`,
  ]);
  restartModule(noEndpoint);

  applyYaml(ns, device("by-route", "{ createOBC: true }"));
  const config = await configWhere(
    ns,
    "by-route",
    "claim bucket",
    c => c.storage?.kind === "ocs",
    30_000,
  );
  assert.is(config.storage!.endpoint, "https://localhost:443");
  assert.is(config.storage!.caBundle, routerCa);
  assert.match(
    condition(ns, "by-route", "BucketClaimReady")?.message ?? "",
    /Route openshift-storage\/s3/,
  );
  assert.is(await uploadThrough(config, "by-route"), "hello from by-route");
});

test.run();

/**
 * The seed's main path: a device registered for OCS. The module claims a bucket for it, the
 * (test) provisioner binds the claim, the config Secret names the claim's bucket, and the agent,
 * run from its packed bundle with the device's own kubeconfig, uploads what the workload writes.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startAgent, type RunningAgent } from "../support/agent-cli";
import { applyYaml, conditionWhere, configWhere } from "../support/devices";
import { tempDir } from "../support/device-files";
import { eventually } from "../support/eventually";
import { kubectl, kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { getObject } from "../support/s3";

const ns = uniqueName("e2e-ocs");
const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
let root = "";
let agent: RunningAgent | undefined;

test.before(async () => {
  root = await tempDir("e2e-ocs");
  kubectlOk(["create", "namespace", ns]);
});
test.after(async () => {
  await agent?.stop();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("a device registered for OCS uploads into its own claim's bucket", async () => {
  kubectlOk(["apply", "-n", ns, "-f", "manifests/samples/os-stats-workload.yaml"]);
  applyYaml(
    ns,
    `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: gateway, labels: { dc: home } }
spec: { requestTime: "2026-11-25T10:00:00Z", storage: { s3: { createOBC: true } } }
`,
  );
  const claim = await eventually(
    "the device's ObjectBucketClaim to be bound",
    () => {
      const r = kubectl(["get", "objectbucketclaim", "gateway", "-n", ns, "-o", "json"]);
      const obc =
        r.status === 0
          ? (JSON.parse(r.stdout) as { status?: { phase?: string }; spec: { bucketName?: string } })
          : undefined;
      return obc?.status?.phase === "Bound" ? obc : undefined;
    },
    30_000,
  );
  const config = await configWhere(
    ns,
    "gateway",
    "the claim's bucket",
    c => c.storage?.kind === "ocs",
    30_000,
  );
  assert.is(config.storage!.bucket, claim.spec.bucketName);
  await conditionWhere(ns, "gateway", "ObcBucket");

  const kubeconfig = join(root, "gateway.kubeconfig");
  const minted = spawnSync(
    "npm",
    ["run", "-s", "device-kubeconfig", "--", `${ns}/gateway`, "--output", kubeconfig],
    { encoding: "utf8" },
  );
  assert.is(minted.status, 0, minted.stderr);
  assert.is(spawnSync("npm", ["run", "-s", "agent:pack"]).status, 0);
  const volumes = join(root, "volumes");
  agent = startAgent(
    [
      "--kubeconfig",
      kubeconfig,
      "--device",
      `${ns}/gateway`,
      "--volumes-dir",
      volumes,
      "--state-dir",
      join(root, "state"),
      "--interval",
      "1",
    ],
    { bin: `dist/agent-pack/flotta-agent-${version}/flotta-agent.js` },
  );
  await mkdir(join(volumes, "os-stats", "stats"), { recursive: true });
  await writeFile(join(volumes, "os-stats", "stats", "uptime.json"), '{"uptime": 42}');
  await eventually(
    "the file in the claim's bucket",
    async () => {
      const body = await getObject(config.storage!.bucket, "statistics/uptime.json").catch(
        () => undefined,
      );
      return body?.toString() === '{"uptime": 42}' ? true : undefined;
    },
    30_000,
  );
  await eventually("the agent's report", () => {
    const status = kubectlJson<{
      status?: { dataUpload?: { destination?: string; filesSent?: number } };
    }>(["get", "edgedevice", "gateway", "-n", ns]).status;
    return status?.dataUpload?.destination?.endsWith(`/${config.storage!.bucket}`) &&
      status.dataUpload.filesSent === 1
      ? true
      : undefined;
  });
});

test.run();

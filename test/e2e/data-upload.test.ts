/**
 * The whole path, as users run it: a device and the seed's workload applied with kubectl, the
 * module writing the device config, the packed agent (run from its tarball's bundle, with the
 * kubeconfig `npm run device-kubeconfig` mints) uploading what the workload writes, and storage
 * switched with patches (what `kubectl edit` does): external A -> external B -> OCS -> A.
 * Every step is asserted on what is in the buckets, not on logs.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startAgent, type RunningAgent } from "../support/agent-cli";
import { applyYaml, configWhere, device, s3Objects } from "../support/devices";
import { tempDir } from "../support/device-files";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { getObject, listKeys, newBucket } from "../support/s3";

const ns = uniqueName("e2e");
const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
let root = "";
let agent: RunningAgent;
let bucketA = "";
let bucketB = "";
let ocsBucket = "";
const stats = () => join(root, "volumes", "os-stats", "stats");
const patchStorage = (s3: object) =>
  kubectlOk([
    "patch",
    "edgedevice",
    "camera",
    "-n",
    ns,
    "--type=merge",
    "-p",
    JSON.stringify({ spec: { storage: { s3 } } }),
  ]);

async function workloadWrites(name: string): Promise<string> {
  const content = `${name} ${new Date().toISOString()}`;
  await mkdir(stats(), { recursive: true });
  await writeFile(join(stats(), name), content);
  return content;
}

const arrives = (bucket: string, name: string, content: string) =>
  eventually(
    `statistics/${name} in ${bucket}`,
    async () => {
      const body = await getObject(bucket, `statistics/${name}`).catch(() => undefined);
      return body?.toString() === content ? true : undefined;
    },
    30_000,
  );

test.before(async () => {
  root = await tempDir("e2e");
  bucketA = await newBucket("e2e-a");
  bucketB = await newBucket("e2e-b");
  kubectlOk(["create", "namespace", ns]);
  const endpoint = new URL(testEnv.s3.endpoint);
  applyYaml(ns, s3Objects(ns, "s3-a", bucketA, endpoint, testEnv.s3));
  applyYaml(ns, s3Objects(ns, "s3-b", bucketB, endpoint, testEnv.s3));
  kubectlOk(["apply", "-n", ns, "-f", "manifests/samples/os-stats-workload.yaml"]);
  applyYaml(
    ns,
    `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: camera, labels: { dc: home } }
spec: { storage: { s3: { configMapName: s3-a, secretName: s3-a, createOBC: false } } }
`,
  );
  await configWhere(
    ns,
    "camera",
    "bucket A and os-stats",
    c => c.storage?.bucket === bucketA && c.workloads.length === 1,
  );
  const kubeconfig = join(root, "device.kubeconfig");
  const minted = spawnSync(
    "npm",
    ["run", "-s", "device-kubeconfig", "--", `${ns}/camera`, "--output", kubeconfig],
    { encoding: "utf8" },
  );
  assert.is(minted.status, 0, minted.stderr);
  const packed = spawnSync("npm", ["run", "-s", "agent:pack"], { encoding: "utf8" });
  assert.is(packed.status, 0, packed.stderr);
  agent = startAgent(
    [
      "--kubeconfig",
      kubeconfig,
      "--device",
      `${ns}/camera`,
      "--volumes-dir",
      join(root, "volumes"),
      "--state-dir",
      join(root, "state"),
      "--interval",
      "1",
    ],
    { bin: `dist/agent-pack/flotta-agent-${version}/flotta-agent.js` },
  );
});

test.after(async () => {
  await agent?.stop();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("external bucket: what the workload writes lands under statistics/", async () => {
  await arrives(bucketA, "cpu-1.json", await workloadWrites("cpu-1.json"));
});

test("the EdgeDevice status shows the agent's last upload beside the module's fields", async () => {
  const status = await eventually("the agent's report", () => {
    const s = device(ns, "camera").status;
    return s?.dataUpload?.lastUploadTime ? s : undefined;
  });
  assert.is(status.dataUpload!.workloads![0].name, "os-stats");
  assert.ok(status.dataUpload!.filesSent! >= 1);
  assert.is(status.storage?.bucket, bucketA);
  assert.is(status.conditions?.find(c => c.type === "Ready")?.status, "True");
  const row = kubectlOk(["get", "edgedevice", "camera", "-n", ns, "--no-headers"]).trim();
  // NAME STORAGE BUCKET READY LAST-UPLOAD WAITING AGE
  assert.match(
    row,
    new RegExp(`^camera\\s+external\\s+${bucketA}\\s+True\\s+\\d+s\\s+0\\s+\\d+s$`),
  );
});

test("switch to another external bucket: new files land there, and earlier ones are copied", async () => {
  patchStorage({ configMapName: "s3-b", secretName: "s3-b" });
  await configWhere(ns, "camera", "bucket B", c => c.storage?.bucket === bucketB);
  const content = await workloadWrites("cpu-2.json");
  await arrives(bucketB, "cpu-2.json", content);
  assert.ok(
    (await listKeys(bucketB)).has("statistics/cpu-1.json"),
    "the new bucket got the earlier file too",
  );
  assert.not.ok(
    (await listKeys(bucketA)).has("statistics/cpu-2.json"),
    "bucket A got a file after the switch",
  );
});

test("switch to OCS: the claim is bound and its bucket receives the files", async () => {
  patchStorage({ configMapName: null, secretName: null, createOBC: true });
  const config = await configWhere(ns, "camera", "OCS", c => c.storage?.kind === "ocs", 30_000);
  ocsBucket = config.storage!.bucket;
  const content = await workloadWrites("cpu-3.json");
  await arrives(ocsBucket, "cpu-3.json", content);
  assert.equal([...(await listKeys(ocsBucket)).keys()].sort(), [
    "statistics/cpu-1.json",
    "statistics/cpu-2.json",
    "statistics/cpu-3.json",
  ]);
});

test("back to external A: files written after the switch land in A, not in the claim's bucket", async () => {
  patchStorage({ configMapName: "s3-a", secretName: "s3-a", createOBC: false });
  await configWhere(ns, "camera", "bucket A again", c => c.storage?.bucket === bucketA);
  const content = await workloadWrites("cpu-4.json");
  await arrives(bucketA, "cpu-4.json", content);
  assert.not.ok((await listKeys(ocsBucket)).has("statistics/cpu-4.json"));
  assert.ok(
    (await listKeys(bucketA)).has("statistics/cpu-3.json"),
    "A caught up on what was written meanwhile",
  );
});

test("a deleted workload: its paths leave the config, and what was uploaded stays", async () => {
  kubectlOk(["delete", "edgeworkload", "os-stats", "-n", ns]);
  await configWhere(ns, "camera", "no workloads", c => c.workloads.length === 0);
  await eventually(
    "the agent to load the new config",
    () => (/"workloads":\[\]/.test(agent.logs()) ? true : undefined),
    30_000,
  );
  await workloadWrites("cpu-5.json");
  await new Promise(resolve => setTimeout(resolve, 3000)); // three agent intervals
  const keys = await listKeys(bucketA);
  assert.not.ok(keys.has("statistics/cpu-5.json"), "a file of a deleted workload was uploaded");
  for (const n of [1, 2, 3, 4])
    assert.ok(keys.has(`statistics/cpu-${n}.json`), `cpu-${n}.json is gone`);
});

test("a deleted device: its access is revoked, and the agent says so without crashing", async () => {
  kubectlOk(["delete", "edgedevice", "camera", "-n", ns]);
  await eventually(
    "the agent to report the revoked token",
    () => (agent.logs().includes("device token was refused") ? true : undefined),
    60_000,
  );
  assert.is(agent.child.exitCode, null, "the agent is still running");
  assert.is(
    kubectl(["get", "objectbucketclaim", "camera", "-n", ns]).status,
    0,
    "the claim (and its bucket) stays",
  );
});

test.run();

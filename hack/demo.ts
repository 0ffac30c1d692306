/**
 * The demo's story (run by hack/demo.sh, which starts the cluster, S3 server, module and test
 * OBC provisioner first): a user sets up a device and a workload with kubectl, a device runs the
 * agent from its tarball, and files the workload writes show up in the bucket, through two
 * storage switches. Each step is checked; a failed check ends the demo with exit code 1.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually } from "../test/support/eventually";
import { kubectl, kubectlOk } from "../test/support/kubectl";
import { listKeys, s3 as client } from "../test/support/s3";

const NS = "edge-demo";
const env = (name: string) => process.env[name] ?? "";
const s3 = {
  endpoint: env("EDGE_S3_ENDPOINT"),
  region: env("EDGE_S3_REGION"),
  accessKeyId: env("EDGE_S3_ACCESS_KEY_ID"),
  secretAccessKey: env("EDGE_S3_SECRET_ACCESS_KEY"),
};
const demoDir = env("DEMO_DIR");
const volumes = join(demoDir, "device", "volumes");
const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;

let step = 0;
const say = (text: string) => process.stdout.write(`${text}\n`);
const heading = (text: string) => say(`\n==> ${++step}. ${text}`);
const show = (text: string) =>
  say(
    text
      .trimEnd()
      .split("\n")
      .map(l => `    ${l}`)
      .join("\n"),
  );
const ok = (text: string) => say(`    ✓ ${text}`);
const run = (args: string[], input?: string) => show(kubectlOk(args, { input }));
/** One field of the demo's EdgeDevice, by JSONPath. */
const deviceField = (path: string) =>
  kubectlOk(["get", "edgedevice", "camera-1", "-n", NS, "-o", `jsonpath=${path}`]);
/** What `kubectl edit edgedevice` does to spec.storage.s3, as a merge patch. */
const patchStorage = (s3: object) =>
  run([
    "patch",
    "edgedevice",
    "camera-1",
    "-n",
    NS,
    "--type=merge",
    "-p",
    JSON.stringify({ spec: { storage: { s3 } } }),
  ]);

async function bucketShows(bucket: string, keys: string[], what: string): Promise<void> {
  const listing = await eventually(
    what,
    async () => {
      const present = [...(await listKeys(bucket)).keys()].sort();
      return keys.every(k => present.includes(k)) ? present : undefined;
    },
    60_000,
  );
  show(`s3://${bucket}:\n${listing.map(k => `  ${k}`).join("\n")}`);
}

function deviceConfig():
  | { storage: { kind: string; bucket: string } | null; workloads: unknown[] }
  | undefined {
  const r = kubectl([
    "get",
    "secret",
    "camera-1-data-upload",
    "-n",
    NS,
    "-o",
    "jsonpath={.data.config\\.json}",
  ]);
  return r.status === 0 && r.stdout
    ? JSON.parse(Buffer.from(r.stdout, "base64").toString())
    : undefined;
}
const configShows = (
  what: string,
  check: (c: NonNullable<ReturnType<typeof deviceConfig>>) => boolean,
) =>
  eventually(
    what,
    () => {
      const c = deviceConfig();
      return c && check(c) ? c : undefined;
    },
    60_000,
  );

let n = 0;
function workloadWrites(): string {
  const name = `stats-${++n}.json`;
  mkdirSync(join(volumes, "os-stats", "stats"), { recursive: true });
  writeFileSync(
    join(volumes, "os-stats", "stats", name),
    JSON.stringify({ sample: n, load: Math.random().toFixed(2), at: new Date().toISOString() }),
  );
  say(`    the workload writes /export/stats/${name}`);
  return `statistics/${name}`;
}

async function moduleAsPods(): Promise<void> {
  heading("The module runs as pods on the local node, from the image built here (pepr deploy)");
  run(["get", "pods", "-n", "pepr-system", "-o", "wide"]);
  const ready = kubectlOk([
    "get",
    "deployments",
    "-n",
    "pepr-system",
    "-o",
    "jsonpath={range .items[*]}{.metadata.name}={.status.readyReplicas}/{.spec.replicas} {end}",
  ]).trim();
  for (const entry of ready.split(" ")) {
    const [name, counts] = entry.split("=");
    const [have, want] = counts.split("/");
    if (have !== want) throw new Error(`deployment ${name}: ${counts} pods ready`);
  }
  ok(`admission and watcher Deployments ready: ${ready}`);
}

async function userStorage(): Promise<void> {
  heading("A namespace, and the user's external S3 storage (two buckets on the local S3 server)");
  if (kubectl(["get", "namespace", NS]).status === 0) {
    say("    (removing the previous demo's namespace first)");
    kubectlOk(["delete", "namespace", NS, "--wait=true", "--timeout=120s"]);
  }
  run(["create", "namespace", NS]);
  for (const bucket of ["demo-bucket-a", "demo-bucket-b"]) {
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((e: { name?: string }) => {
      if (e.name !== "BucketAlreadyOwnedByYou" && e.name !== "BucketAlreadyExists") throw e;
    });
  }
  const host = new URL(s3.endpoint);
  const storage = (name: string, bucket: string) => `
apiVersion: v1
kind: ConfigMap
metadata: { name: ${name} }
data: { BUCKET_HOST: "${host.hostname}", BUCKET_PORT: "${host.port}", BUCKET_NAME: ${bucket}, BUCKET_REGION: ${s3.region} }
---
apiVersion: v1
kind: Secret
metadata: { name: ${name} }
type: Opaque
stringData: { AWS_ACCESS_KEY_ID: ${s3.accessKeyId}, AWS_SECRET_ACCESS_KEY: ${s3.secretAccessKey} }
`;
  run(
    ["apply", "-n", NS, "-f", "-"],
    storage("s3-bucket-a", "demo-bucket-a") + "---" + storage("s3-bucket-b", "demo-bucket-b"),
  );
}

function deviceAndWorkload(): void {
  heading("An EdgeDevice that uploads to bucket A, and the seed's os-stats EdgeWorkload");
  run(
    ["apply", "-n", NS, "-f", "-"],
    `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: camera-1, labels: { dc: home } }
spec:
  requestTime: "${new Date().toISOString().replace(/\.\d+Z$/, "Z")}"
  storage: { s3: { configMapName: s3-bucket-a, secretName: s3-bucket-a, createOBC: false } }
`,
  );
  run(["apply", "-n", NS, "-f", "manifests/samples/os-stats-workload.yaml"]);

  heading("The module injected the /export volume into the workload");
  const podSpec = kubectlOk([
    "get",
    "edgeworkload",
    "os-stats",
    "-n",
    NS,
    "-o",
    "jsonpath={.spec.pod.spec}",
  ]);
  show(JSON.stringify(JSON.parse(podSpec), null, 2));
  if (!podSpec.includes('"mountPath":"/export"')) throw new Error("no /export mount was injected");
  ok(
    "volume export-os-stats (hostPath /var/local/yggdrasil/device/volumes/os-stats) mounted at /export",
  );
}

async function assembledConfig(): Promise<void> {
  heading("The module assembled the device's config (credentials masked)");
  const config = await configShows(
    "the device config with bucket A",
    c => c.storage?.bucket === "demo-bucket-a" && c.workloads.length === 1,
  );
  show(
    JSON.stringify(config, null, 2).replace(
      /("(?:accessKeyId|secretAccessKey)": )"[^"]*"/g,
      '$1"****"',
    ),
  );
  await eventually("Ready=True", () =>
    deviceField('{.status.conditions[?(@.type=="Ready")].status}') === "True" ? true : undefined,
  );
  run(["get", "edgedevices", "-n", NS]);
}

/** The device's own kubeconfig, checked to read nothing but its config. */
function deviceKubeconfig(): string {
  const kubeconfig = join(demoDir, "device", "device.kubeconfig");
  const minted = spawnSync(
    "bash",
    ["hack/device-kubeconfig.sh", `${NS}/camera-1`, "--output", kubeconfig],
    { encoding: "utf8" },
  );
  if (minted.status !== 0) throw new Error(minted.stderr);
  ok(`npm run device-kubeconfig -- ${NS}/camera-1 --output device.kubeconfig`);
  const forbidden = kubectl(["--kubeconfig", kubeconfig, "get", "secret", "s3-bucket-a", "-n", NS]);
  if (forbidden.status === 0) throw new Error("the device could read the user's S3 Secret");
  ok(`with it, reading another Secret is refused: ${forbidden.stderr.trim().split("\n")[0]}`);
  return kubeconfig;
}

function startDevice(): void {
  heading(
    "The device: a kubeconfig that can read only its own config, and the agent's single executable",
  );
  rmSync(demoDir, { recursive: true, force: true });
  mkdirSync(join(demoDir, "device"), { recursive: true });
  const kubeconfig = deviceKubeconfig();
  // The x86-64 single executable's tarball: no Node.js needed on the device.
  const tarball = `dist/flotta-agent-${version}-linux-x64.tgz`;
  spawnSync("tar", ["-xzf", tarball, "-C", join(demoDir, "device")]);
  const exe = join(demoDir, "device", `flotta-agent-${version}`, "flotta-agent");
  const log = openSync(join(demoDir, "agent.log"), "w");
  const agent = spawn(
    exe,
    [
      "run",
      "--kubeconfig",
      kubeconfig,
      "--device",
      `${NS}/camera-1`,
      "--volumes-dir",
      volumes,
      "--state-dir",
      join(demoDir, "device", "state"),
      "--interval",
      "2",
    ],
    { stdio: ["ignore", log, log], detached: true },
  );
  writeFileSync(join(demoDir, "agent.pid"), String(agent.pid));
  agent.unref();
  const about = spawnSync(exe, ["--version"], { encoding: "utf8" }).stdout.trim().split("\n");
  ok(`agent ${about.join(", ")}, from ${tarball} (log: ${join(demoDir, "agent.log")})`);
}

async function uploadsAndSwitches(): Promise<void> {
  heading("The workload writes statistics; they appear in bucket A under statistics/");
  const first = [workloadWrites(), workloadWrites(), workloadWrites()];
  await bucketShows("demo-bucket-a", first, "the first files in bucket A");
  const lastUpload = await eventually("the agent's report in the EdgeDevice status", () => {
    const t = deviceField("{.status.dataUpload.lastUploadTime}");
    return t || undefined;
  });
  ok(`the agent reported its last upload (${lastUpload}) into the EdgeDevice status`);
  run(["get", "edgedevices", "-n", NS]);

  heading("kubectl patch (what kubectl edit does): switch the device to bucket B");
  patchStorage({ configMapName: "s3-bucket-b", secretName: "s3-bucket-b" });
  await configShows("the config with bucket B", c => c.storage?.bucket === "demo-bucket-b");
  const second = workloadWrites();
  await bucketShows("demo-bucket-b", [...first, second], "bucket B with every file");
  ok("bucket B got the new file, and the earlier ones too: a new destination starts empty");

  heading(
    "Switch to OCS: the module claims a bucket (ObjectBucketClaim), the test provisioner binds it",
  );
  patchStorage({ configMapName: null, secretName: null, createOBC: true });
  const ocs = await configShows(
    "the config with the claim's bucket",
    c => c.storage?.kind === "ocs",
  );
  run(["get", "objectbucketclaims", "-n", NS]);
  const third = workloadWrites();
  await bucketShows(
    ocs.storage!.bucket,
    [...first, second, third],
    "the claim's bucket with every file",
  );
  run(["get", "edgedevices", "-n", NS]);
}

async function main(): Promise<void> {
  await moduleAsPods();
  await userStorage();
  deviceAndWorkload();
  await assembledConfig();
  startDevice();
  await uploadsAndSwitches();
  say("\nEvery step worked.");
}

main().catch(err => {
  process.stderr.write(`\nThe demo failed at step ${step}: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});

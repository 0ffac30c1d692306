/**
 * The agent's Kubernetes side, with a device's own token: it reads its config Secret, follows
 * changes to it without a restart, reports into its EdgeDevice's status (leaving the module's
 * fields alone), waits with a reason when the Secret is missing, and says so clearly when its
 * token is revoked.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tokenClaims } from "../../agent/kube/token";
import { join } from "node:path";
import { deviceConfigSecretName } from "../../agent/config/device-config";
import type { EdgeDevice } from "../../capabilities/generated/edgedevice-v1alpha1";
import { runAgent, startAgent, storageFor, type RunningAgent } from "../support/agent-cli";
import {
  grantDeviceAccess,
  putConfigSecret,
  writeDeviceKubeconfig,
} from "../support/device-access";
import { tempDir, writeTree } from "../support/device-files";
import { auditEventsSince, auditMark } from "../support/audit";
import { eventually } from "../support/eventually";
import { kubectl, kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { getObject, listKeys, newBucket } from "../support/s3";

const ns = uniqueName("agent-kube");
const device = "cam-1";
let root = "";
let running: RunningAgent | undefined;
const kubeconfig = () => join(root, "device.kubeconfig");
const volumes = () => join(root, "volumes");
const args = () => [
  "--kubeconfig",
  kubeconfig(),
  "--device",
  `${ns}/${device}`,
  "--volumes-dir",
  volumes(),
  "--state-dir",
  join(root, "state"),
];

const putConfig = (bucket: string) => putConfigSecret(ns, device, storageFor(bucket));

test.before(async () => {
  root = await tempDir("agent-kube");
  kubectlOk(["apply", "-f", "manifests/crds/"]);
  kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "-f", "manifests/crds/"]);
  kubectlOk(["create", "namespace", ns]);
  kubectlOk(["apply", "-n", ns, "-f", "-"], {
    input: `{"apiVersion":"management.project-flotta.io/v1alpha1","kind":"EdgeDevice","metadata":{"name":"${device}"},"spec":{}}`,
  });
  // A field the module owns: the agent's patches must leave it alone.
  kubectlOk([
    "patch",
    "edgedevice",
    device,
    "-n",
    ns,
    "--subresource=status",
    "--type=merge",
    "-p",
    '{"status":{"storage":{"kind":"external","bucket":"set-by-module"}}}',
  ]);
  grantDeviceAccess(ns, device);
  writeDeviceKubeconfig(kubeconfig(), ns, device);
  await writeTree(join(volumes(), "os-stats", "stats"), { "load.json": "0.42", "day/1.json": "1" });
});

test.after(async () => {
  await running?.stop();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("without its config Secret the agent waits and says why", async () => {
  const run = await runAgent(["sync", "--once", ...args()]);
  assert.is(run.status, 1);
  assert.match(
    run.stderr,
    new RegExp(`Secret ${ns}/${deviceConfigSecretName(device)} does not exist yet`),
  );
});

test("with its config Secret it uploads, and reports into the EdgeDevice status", async () => {
  const bucket = await newBucket("kube-a");
  putConfig(bucket);
  const run = await runAgent(["sync", "--once", ...args()]);
  assert.is(run.status, 0, run.stderr);
  assert.is((await getObject(bucket, "statistics/load.json")).toString(), "0.42");

  const status = kubectlJson<EdgeDevice>(["get", "edgedevice", device, "-n", ns]).status!;
  assert.is(status.storage?.bucket, "set-by-module", "the agent changed a field it does not own");
  const upload = status.dataUpload!;
  assert.is(upload.filesSent, 2);
  assert.is(upload.bytesSent, 5);
  assert.is(upload.destination, `${storageFor(bucket).endpoint}/${bucket}`);
  assert.ok(upload.lastUploadTime && upload.lastSyncTime);
  assert.equal(
    upload.workloads?.map(w => [w.name, w.filesSent]),
    [["os-stats", 2]],
  );
  const row = kubectlOk(["get", "edgedevice", device, "-n", ns, "--no-headers"]);
  // READY is blank (the module sets it); LAST UPLOAD shows the age of the agent's upload, and
  // WAITING the files the last pass left waiting.
  assert.match(
    row.trim(),
    /^cam-1\s+external\s+set-by-module\s+\d+s\s+0\s+\d+s$/,
    "LAST UPLOAD and WAITING columns",
  );
});

test("a change to the config Secret takes effect without a restart", async () => {
  const b = await newBucket("kube-b");
  running = startAgent([...args(), "--interval", "2"]);
  await eventually("the agent's first pass", () =>
    running!.logs().includes("sync pass done") || running!.logs().includes("destination opened")
      ? true
      : undefined,
  );
  putConfig(b);
  await eventually(
    "files in the new bucket",
    async () => ((await listKeys(b)).size === 2 ? true : undefined),
    30_000,
  );
  await eventually("the status names the new bucket", () =>
    kubectlJson<EdgeDevice>([
      "get",
      "edgedevice",
      device,
      "-n",
      ns,
    ]).status?.dataUpload?.destination?.endsWith(b)
      ? true
      : undefined,
  );
  await running.stop();
  running = undefined;
});

test("the agent renews its device token before it expires, into its state dir, never the kubeconfig", async () => {
  writeDeviceKubeconfig(kubeconfig(), ns, device, "10m");
  const kubeconfigText = readFileSync(kubeconfig(), "utf8");
  const before = (JSON.parse(kubeconfigText) as { users: { user: { token: string } }[] }).users[0]
    .user.token;
  const stored = join(root, "state", "token");
  // 10 minutes is TokenRequest's shortest lifetime; renew when less than all of it is left.
  const run = await runAgent(["sync", "--once", ...args(), "--token-renew-before", "600"]);
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /renewed the device token/);
  assert.is(
    readFileSync(kubeconfig(), "utf8"),
    kubeconfigText,
    "the kubeconfig is root's: untouched",
  );
  const after = readFileSync(stored, "utf8");
  assert.is.not(after, before);
  // Minted in the same second, the two can expire together; never earlier.
  assert.ok(tokenClaims(after)!.expiresAt >= tokenClaims(before)!.expiresAt);
  assert.is(statSync(stored).mode & 0o777, 0o600);
  assert.not.match(run.stderr, new RegExp(after.slice(-20)), "the token reached the log");
  // The next start uses the renewed token (the API server's audit log names the request's token
  // by its ID); a newer kubeconfig would win over it (see renewedToken).
  const mark = auditMark();
  const next = await runAgent(["sync", "--once", ...args()]);
  assert.is(next.status, 0, next.stderr);
  const jti = (token: string) =>
    (JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()) as { jti: string }).jti;
  const used = new Set(
    auditEventsSince(mark)
      .filter(e => e.user.username === `system:serviceaccount:${ns}:${device}-agent`)
      .flatMap(e => e.user.extra?.["authentication.kubernetes.io/credential-id"] ?? []),
  );
  assert.equal(
    [...used],
    [`JTI=${jti(after)}`],
    "the next start authenticates with the renewed token",
  );
});

test("a revoked device (ServiceAccount deleted) gets a clear error", async () => {
  kubectlOk(["delete", "serviceaccount", `${device}-agent`, "-n", ns]);
  await eventually("the token to be refused", async () => {
    const run = await runAgent(["sync", "--once", ...args()]);
    return /device token was refused \(expired or revoked\)/.test(run.stderr) ? run : undefined;
  });
});

test.run();

/**
 * Outages, on real servers: an S3 server of the test's own stopped for 30 s in the middle of a
 * sync and started again; the shared S3 server behind a proxy that answers 500/503 or resets
 * the connection on a share of requests; the API server cut off from the agent (a TCP proxy in
 * front of it, closed and reopened) while the agent keeps uploading on its last good config.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { deviceConfigSecretName } from "../../agent/config/device-config";
import { createS3Client } from "../../agent/s3/client";
import type { EdgeDevice } from "../../capabilities/generated/edgedevice-v1alpha1";
import { startAgent, storageFor, writeConfig, type RunningAgent } from "../support/agent-cli";
import { grantDeviceAccess, writeDeviceKubeconfig } from "../support/device-access";
import { readTree, tempDir, writeTree } from "../support/device-files";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { startFaultProxy, startTcpProxy } from "../support/fault-proxy";
import { kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { listKeys, newBucket, getObject } from "../support/s3";

const KiB = 1024;
const MiB = 1024 * KiB;
let root = "";
let agent: RunningAgent | undefined;
const volumes = () => join(root, "volumes");
const source = () => join(volumes(), "cam", "frames");
const workloads = [{ name: "cam", paths: [{ source: "frames", target: "frames" }] }];
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

test.before.each(async () => {
  root = await tempDir("agent-outage");
});
test.after.each(async () => {
  await agent?.stop();
  agent = undefined;
  await rm(root, { recursive: true, force: true });
});

/** True once every file of the source is in the bucket with its bytes. */
async function bucketIsSource(client: S3Client, bucket: string): Promise<true | undefined> {
  const local = await readTree(source());
  const remote = await listKeys(bucket, client);
  if (remote.size !== local.size) return undefined;
  for (const [path, bytes] of local)
    if (!(await getObject(bucket, `frames/${path}`, client)).equals(bytes)) return undefined;
  return true;
}

function freePort(): Promise<number> {
  const server = createServer();
  return new Promise(resolve =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    }),
  );
}

/** A versitygw of this test's own, on `port`, keeping its data in `dir` across restarts. */
function startS3(port: number, dir: string): ChildProcess {
  const s = testEnv.s3;
  return spawn(
    testEnv.versitygw,
    [
      "--port",
      `127.0.0.1:${port}`,
      "--region",
      s.region,
      "--quiet",
      "posix",
      "--sidecar",
      join(dir, "meta"),
      join(dir, "data"),
    ],
    {
      env: { ...process.env, ROOT_ACCESS_KEY: s.accessKeyId, ROOT_SECRET_KEY: s.secretAccessKey },
      stdio: "ignore",
    },
  );
}

test("the S3 server stopped for 30 s mid-sync: the agent backs off, then finishes; nothing lost", async () => {
  const dir = join(root, "s3");
  await mkdir(join(dir, "meta"), { recursive: true });
  await mkdir(join(dir, "data"), { recursive: true });
  const port = await freePort();
  let server = startS3(port, dir);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createS3Client({ ...testEnv.s3, endpoint });
  try {
    await eventually("our S3 server", () =>
      client.send(new CreateBucketCommand({ Bucket: "outage" })),
    );
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 60; i++) files[`${i}.bin`] = randomBytes(256 * KiB);
    files["big.bin"] = randomBytes(12 * MiB);
    await writeTree(source(), files);
    await writeConfig(join(root, "config.json"), {
      storage: storageFor("outage", { endpoint }),
      workloads,
    });
    agent = startAgent([
      ...["--config", join(root, "config.json"), "--volumes-dir", volumes()],
      ...["--state-dir", join(root, "state"), "--interval", "1", "--part-size", "5"],
      ...["--max-rate", "4M"],
    ]);
    await eventually("the first uploads", async () =>
      (await listKeys("outage", client)).size >= 5 ? true : undefined,
    );
    server.kill("SIGTERM");
    await new Promise(resolve => server.once("exit", resolve));
    await sleep(30_000);
    assert.match(agent.logs(), /sync failed; will retry/, "the agent saw the outage");
    server = startS3(port, dir);
    await eventually("every file in the bucket", () => bucketIsSource(client, "outage"), 120_000);
    assert.is(agent.child.exitCode, null, "the agent kept running");
  } finally {
    server.kill("SIGTERM");
    client.destroy();
  }
});

test("S3 answering 500/503 or resetting connections on a share of requests: the sync completes, exact", async () => {
  const bucket = await newBucket("faults");
  const proxy = await startFaultProxy(testEnv.s3.endpoint, {
    errorRate: 0.15,
    resetRate: 0.1,
    seed: 42,
  });
  try {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 120; i++) files[`small/${i}.txt`] = randomBytes(3 * KiB + i);
    files["large/a.bin"] = randomBytes(11 * MiB);
    files["large/b.bin"] = randomBytes(6 * MiB);
    await writeTree(source(), files);
    await writeConfig(join(root, "config.json"), {
      storage: storageFor(bucket, { endpoint: proxy.url }),
      workloads,
    });
    agent = startAgent([
      ...["--config", join(root, "config.json"), "--volumes-dir", volumes()],
      ...["--state-dir", join(root, "state"), "--interval", "1", "--part-size", "5"],
    ]);
    const direct = createS3Client(testEnv.s3);
    await eventually("every file in the bucket", () => bucketIsSource(direct, bucket), 120_000);
    direct.destroy();
    console.log(
      `  fault proxy: ${proxy.counts.forwarded} forwarded, ${proxy.counts.errors} 500/503, ${proxy.counts.resets} resets`,
    );
    assert.ok(proxy.counts.errors >= 10 && proxy.counts.resets >= 10, "too few faults injected");
  } finally {
    await proxy.stop();
  }
});

test("the API server cut off: the agent uploads on its last good config and reports when it is back", async () => {
  const ns = uniqueName("outage");
  const device = "cam-1";
  const bucket = await newBucket("api-outage");
  const admin = kubectlJson<{ clusters: { cluster: { server: string } }[] }>([
    "config",
    "view",
    "--raw",
  ]);
  const proxy = await startTcpProxy(Number(new URL(admin.clusters[0].cluster.server).port));
  kubectlOk(["apply", "-f", "manifests/crds/"]);
  kubectlOk(["create", "namespace", ns]);
  try {
    kubectlOk(["apply", "-n", ns, "-f", "-"], {
      input: `{"apiVersion":"management.project-flotta.io/v1alpha1","kind":"EdgeDevice","metadata":{"name":"${device}"},"spec":{}}`,
    });
    kubectlOk(["apply", "-n", ns, "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: deviceConfigSecretName(device) },
        stringData: {
          "config.json": JSON.stringify({
            version: 1,
            device: { namespace: ns, name: device },
            storage: storageFor(bucket),
            workloads,
          }),
        },
      }),
    });
    grantDeviceAccess(ns, device);
    const kubeconfig = join(root, "device.kubeconfig");
    writeDeviceKubeconfig(kubeconfig, ns, device, "1h", `https://127.0.0.1:${proxy.port}`);
    await writeTree(source(), { "before.txt": "before" });
    agent = startAgent([
      ...["--kubeconfig", kubeconfig, "--device", `${ns}/${device}`],
      ...["--volumes-dir", volumes(), "--state-dir", join(root, "state"), "--interval", "1"],
    ]);
    const direct = createS3Client(testEnv.s3);
    await eventually("the first file", () => bucketIsSource(direct, bucket));
    await proxy.cut();
    await writeTree(source(), { "during.txt": "while the API server was away" });
    await eventually("a file written during the outage", () => bucketIsSource(direct, bucket));
    await sleep(6_000); // a few config polls fail meanwhile
    assert.match(agent.logs(), /ECONNREFUSED|cannot report status|not reachable/);
    await proxy.restore();
    await eventually("the status written after the outage", () => {
      const status = kubectlJson<EdgeDevice>(["get", "edgedevice", device, "-n", ns]).status;
      const cam = status?.dataUpload?.workloads?.find(w => w.name === "cam");
      return cam?.filesSent === 2 ? true : undefined;
    });
    assert.is(agent.child.exitCode, null);
    direct.destroy();
  } finally {
    await proxy.stop();
    kubectlOk(["delete", "namespace", ns, "--wait=false"]);
  }
});

test.run();

/**
 * The upload options of issue 22 end to end: EdgeDevices and an EdgeWorkload applied and
 * patched (what `kubectl edit` does), the module writing configs and conditions, agents with
 * device kubeconfigs reporting status. Retention's size cap with the bucket unreachable raises
 * DiskPressure; files written while no pass runs raise UploadStalled; a bandwidth timetable
 * edited on the EdgeDevice holds and releases uploads in the running agent.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startAgent, type RunningAgent } from "../support/agent-cli";
import { applyYaml, condition, conditionWhere, device, s3Objects } from "../support/devices";
import { tempDir } from "../support/device-files";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { startTcpProxy, type TcpProxy } from "../support/fault-proxy";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { listKeys, newBucket, serverRequestDetails } from "../support/s3";

const ns = uniqueName("options");
let root = "";
let proxy: TcpProxy;
let bucket = "";
const agents: RunningAgent[] = [];
const folder = (dev: string) => join(root, dev, "volumes", "logger", "out");

function mintKubeconfig(dev: string): string {
  const kubeconfig = join(root, dev, "device.kubeconfig");
  const minted = spawnSync(
    "npm",
    ["run", "-s", "device-kubeconfig", "--", `${ns}/${dev}`, "--output", kubeconfig],
    { encoding: "utf8" },
  );
  assert.is(minted.status, 0, minted.stderr);
  return kubeconfig;
}

function agentFor(dev: string, ...flags: string[]): RunningAgent {
  const agent = startAgent([
    "--kubeconfig",
    mintKubeconfig(dev),
    "--device",
    `${ns}/${dev}`,
    "--volumes-dir",
    join(root, dev, "volumes"),
    "--state-dir",
    join(root, dev, "state"),
    ...flags,
  ]);
  agents.push(agent);
  return agent;
}

const patchDevice = (dev: string, spec: object) =>
  kubectlOk(["patch", "edgedevice", dev, "-n", ns, "--type=merge", "-p", JSON.stringify({ spec })]);

test.before(async () => {
  root = await tempDir("e2e-options");
  bucket = await newBucket("e2e-options");
  proxy = await startTcpProxy(Number(new URL(testEnv.s3.endpoint).port));
  kubectlOk(["create", "namespace", ns]);
  applyYaml(ns, s3Objects(ns, "s3", bucket, new URL(`http://127.0.0.1:${proxy.port}`), testEnv.s3));
  applyYaml(
    ns,
    `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: capped, labels: { role: capped } }
spec: { storage: { keyPrefix: "{device}", s3: { configMapName: s3, secretName: s3, createOBC: false } } }
---
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: quiet, labels: { role: quiet } }
spec:
  storage: { keyPrefix: "{device}", s3: { configMapName: s3, secretName: s3, createOBC: false } }
  dataUpload: { stallAfterSeconds: 10 }
---
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: logger }
spec:
  type: pod
  deviceSelector: { matchExpressions: [{ key: role, operator: Exists }] }
  pod: { spec: { containers: [{ name: logger, image: busybox }] } }
  data:
    paths:
      - source: out
        target: logs
        retention: { maxSize: 10Ki }
`,
  );
});

test.after(async () => {
  for (const agent of agents) await agent.stop();
  await proxy?.stop();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("a size cap with the bucket unreachable: nothing deleted, DiskPressure; then the oldest go", async () => {
  await mkdir(folder("capped"), { recursive: true });
  await writeFile(join(folder("capped"), "a.log"), randomBytes(6000));
  agentFor("capped", "--interval", "1");
  await conditionWhere(ns, "capped", "WithinCap", "DiskPressure", 30_000);
  await eventually("a.log in the bucket", async () =>
    (await listKeys(bucket)).has("capped/logs/a.log") ? true : undefined,
  );
  await proxy.cut();
  await writeFile(join(folder("capped"), "b.log"), randomBytes(6000));
  await writeFile(join(folder("capped"), "c.log"), randomBytes(6000));
  const pressure = await conditionWhere(ns, "capped", "OverCap", "DiskPressure", 30_000);
  assert.is(pressure.status, "True");
  assert.match(
    pressure.message,
    /workload logger, data path out: 18000 bytes, over its cap of 10240: the bucket cannot be reached/,
  );
  assert.equal(await readdir(folder("capped")), ["a.log", "b.log", "c.log"], "nothing deleted");
  const events = kubectlOk([
    "get",
    "events",
    "-n",
    ns,
    "--field-selector",
    "involvedObject.name=capped",
    "-o",
    "json",
  ]);
  assert.match(events, /"reason": "OverCap"/);
  await proxy.restore();
  await conditionWhere(ns, "capped", "WithinCap", "DiskPressure", 30_000);
  assert.equal(await readdir(folder("capped")), ["c.log"], "the oldest confirmed files went first");
});

test("files written while no pass runs raise UploadStalled; a timetable edit holds, then releases", async () => {
  await mkdir(folder("quiet"), { recursive: true });
  const agent = agentFor("quiet", "--no-events", "--interval", "3600");
  await conditionWhere(ns, "quiet", "Flowing", "UploadStalled", 30_000);
  await writeFile(join(folder("quiet"), "late.log"), "late");
  const stalled = await conditionWhere(ns, "quiet", "FilesWaiting", "UploadStalled", 40_000);
  assert.is(stalled.status, "True");
  assert.match(stalled.message, /the oldest of 1 waiting files changed at .*, over 10 s ago/);
  assert.match(String(device(ns, "quiet").status?.dataUpload?.oldestWaitingTime), /^\d{4}-/);

  // kubectl edit: a timetable that holds all day. The running agent takes it and sends nothing.
  const pid = agent.child.pid;
  patchDevice("quiet", {
    dataUpload: {
      bandwidth: { timeZone: "UTC", jitterSeconds: 0, schedule: [{ start: "00:00", rate: "off" }] },
    },
  });
  await eventually("the hold in status", () =>
    device(ns, "quiet").status?.dataUpload?.bandwidth === "held: the timetable never opens"
      ? true
      : undefined,
  );
  await new Promise(resolve => setTimeout(resolve, 2000));
  const uploads = serverRequestDetails(bucket).filter(
    r => r.op === "s3_PutObject" && r.key.startsWith("quiet/"),
  );
  assert.equal(uploads, [], "no upload while held");
  assert.ok(!(await listKeys(bucket)).has("quiet/logs/late.log"));

  // And again: the window opens (no cap). The same process uploads; the stall ends.
  patchDevice("quiet", {
    dataUpload: {
      bandwidth: {
        timeZone: "UTC",
        jitterSeconds: 0,
        schedule: [{ start: "00:00", rate: "unlimited" }],
      },
    },
  });
  await eventually("late.log in the bucket", async () =>
    (await listKeys(bucket)).has("quiet/logs/late.log") ? true : undefined,
  );
  await conditionWhere(ns, "quiet", "Flowing", "UploadStalled", 30_000);
  assert.is(agent.child.pid, pid);
  assert.is(agent.child.exitCode, null);
  assert.is(device(ns, "quiet").status?.dataUpload?.bandwidth, "no cap");
  assert.is(condition(ns, "quiet", "DiskPressure")?.status, "False");
});

test.run();

/**
 * The agent follows its config Secret through a watch on that one name, not by polling: a change
 * reaches it within 2 s while its sync interval is an hour, and it keeps following after the
 * connection to the API server is cut (a TCP proxy in front of the API server) and comes back.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { startAgent, storageFor, type RunningAgent } from "../support/agent-cli";
import { auditEventsSince, auditMark } from "../support/audit";
import {
  grantDeviceAccess,
  putConfigSecret,
  writeDeviceKubeconfig,
} from "../support/device-access";
import { tempDir } from "../support/device-files";
import { eventually } from "../support/eventually";
import { startTcpProxy, type TcpProxy } from "../support/fault-proxy";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const ns = uniqueName("agent-watch");
const device = "cam-1";
let root = "";
let agent: RunningAgent | undefined;
let proxy: TcpProxy | undefined;

const putConfig = (bucket: string) => putConfigSecret(ns, device, storageFor(bucket));

const loaded = (bucket: string) => () =>
  agent!.logs().includes(`"msg":"config loaded"`) && agent!.logs().includes(`"bucket":"${bucket}"`)
    ? true
    : undefined;

test.before(async () => {
  root = await tempDir("agent-watch");
  kubectlOk(["create", "namespace", ns]);
  grantDeviceAccess(ns, device);
  const server = (
    JSON.parse(kubectlOk(["config", "view", "--minify", "-o", "json"])) as {
      clusters: { cluster: { server: string } }[];
    }
  ).clusters[0].cluster.server;
  proxy = await startTcpProxy(Number(new URL(server).port));
  writeDeviceKubeconfig(
    join(root, "kubeconfig"),
    ns,
    device,
    "1h",
    `https://127.0.0.1:${proxy.port}`,
  );
  putConfig("watch-a");
  agent = startAgent([
    "--kubeconfig",
    join(root, "kubeconfig"),
    "--device",
    `${ns}/${device}`,
    "--volumes-dir",
    join(root, "volumes"),
    "--state-dir",
    join(root, "state"),
    "--interval",
    "3600",
  ]);
  await eventually("the first config", loaded("watch-a"), 20_000);
});

test.after(async () => {
  await agent?.stop();
  await proxy?.stop();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("a config change reaches the agent through its watch within 2 s", async () => {
  await new Promise(resolve => setTimeout(resolve, 1000)); // the watch is open
  putConfig("watch-b");
  await eventually("the changed config", loaded("watch-b"), 2_000);
});

/** The agent's GETs of its config Secret since `mark`. */
const secretReads = (mark: number) =>
  auditEventsSince(mark).filter(
    e =>
      e.user.username === `system:serviceaccount:${ns}:${device}-agent` &&
      e.verb === "get" &&
      e.objectRef?.resource === "secrets",
  ).length;

test("an idle agent does not poll its Secret", async () => {
  const from = auditMark();
  await new Promise(resolve => setTimeout(resolve, 12_000)); // the old poll: every 5 s
  assert.is(secretReads(from), 0);
  // The count sees reads: a change makes exactly the agent read the Secret.
  putConfig("watch-idle");
  await eventually("the changed config", loaded("watch-idle"), 5_000);
  assert.ok(secretReads(from) >= 1, "no read of the Secret was counted after a change");
});

test("the watch survives a cut connection", async () => {
  await proxy!.cut();
  await new Promise(resolve => setTimeout(resolve, 3000));
  putConfig("watch-c"); // changed while the agent cannot see the API server
  await proxy!.restore();
  await eventually("the config changed during the cut", loaded("watch-c"), 15_000);
  putConfig("watch-d");
  await eventually("a change after the cut", loaded("watch-d"), 5_000);
  assert.not.match(agent!.logs(), /reading it every minute/, "the watch was not refused");
});

test.run();

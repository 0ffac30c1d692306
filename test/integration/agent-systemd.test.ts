/**
 * The agent where it lives: installed from its tarball with install.sh, as the README says, into
 * a device whose init is systemd (a runc container of the test's own, test/support/systemd-device.ts),
 * and run by its real unit, flotta-agent.service. From inside the device: the unit's sandbox
 * (user, capabilities, no new privileges, seccomp, read-only system), every agent path under its
 * SystemCallFilter (file events, TLS, the state lock, token renewal, the metrics textfile),
 * MemoryMax and TasksMax enforced, clean stops and restarts, and an upgrade that keeps the index.
 */
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { storageFor } from "../support/agent-cli";
import {
  deviceNamespace,
  reportedUpload,
  putConfigSecret,
  writeDeviceKubeconfig,
} from "../support/device-access";
import { tempDir } from "../support/device-files";
import {
  inBucket as bucketHolds,
  unitJournal,
  unitProperty,
  writeFiles as writeDeviceFiles,
} from "../support/device-uploads";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { kubectl } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { newBucket, s3, serverRequests } from "../support/s3";
import { bootSystemd, type SystemdDevice } from "../support/systemd-device";

const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
const ns = uniqueName("systemd");
const TEXTFILE = "/var/lib/node_exporter/textfile_collector/flotta-agent.prom";
let root = "";
let device: SystemdDevice;
let bucket = "";
let stats = ""; // the workload's folder, as the host sees it

const show = (property: string) => unitProperty(device, property);
const journal = () => unitJournal(device);
const uploads = () =>
  serverRequests(bucket, "s3-tls-access.log").filter(op =>
    ["s3_PutObject", "s3_UploadPart", "s3_CreateMultipartUpload"].includes(op),
  ).length;
const writeFiles = (prefix: string, count: number, size: number) =>
  writeDeviceFiles(stats, "statistics", prefix, count, size);
const inBucket = (files: Map<string, string>, what: string, timeoutMs = 60_000) =>
  bucketHolds(
    bucket,
    files,
    what,
    timeoutMs,
    () => `; the unit's journal ends:\n${journal().slice(-4000)}`,
  );

/** The agent's main process, as systemd knows it (a pid in the device). */
const mainPid = () => {
  const pid = show("MainPID");
  assert.ok(pid !== "0", `the unit has no main process: ${show("ActiveState")}`);
  return pid;
};

function install(...args: string[]): string {
  return device.run(["sh", `/root/flotta-agent-${version}/install.sh`, ...args]);
}

test.before(async () => {
  root = await tempDir("agent-systemd");
  const packed = spawnSync("npm", ["run", "-s", "agent:pack"], { encoding: "utf8" });
  assert.is(packed.status, 0, packed.stderr);
  device = await bootSystemd(root, ns);
  spawnSync("tar", ["-xzf", `dist/flotta-agent-${version}.tgz`, "-C", join(device.rootfs, "root")]);

  deviceNamespace(ns, "cam");
  bucket = await newBucket("systemd");
  const caBundle = readFileSync(testEnv.s3.tlsCaFile, "utf8");
  putConfigSecret(ns, "cam", storageFor(bucket, { endpoint: testEnv.s3.tlsEndpoint, caBundle }));
  // TokenRequest's shortest lifetime, renewed at once (--token-renew-before all of it).
  writeDeviceKubeconfig(join(device.rootfs, "root", "device.kubeconfig"), ns, "cam", "10m");
  stats = await device.statsFolder();
});

test.after(async () => {
  await device?.stop();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("install.sh installs the unit, systemd starts it, and files are uploaded", async () => {
  const out = install(
    "--kubeconfig",
    "/root/device.kubeconfig",
    "--device",
    `${ns}/cam`,
    "--",
    "--interval",
    "3600",
    "--token-renew-before",
    "600",
    "--metrics-textfile",
    TEXTFILE,
  );
  assert.match(out, /installed; logs: journalctl -u flotta-agent/);
  // node_exporter's textfile folder, writable by the agent's group (the admin's part).
  device.run([
    "sh",
    "-c",
    `chgrp flotta-agent ${dirname(TEXTFILE)} && chmod 0775 ${dirname(TEXTFILE)}`,
  ]);
  assert.is(device.run(["systemctl", "is-enabled", "flotta-agent"]).trim(), "enabled");
  await eventually("the unit active", () => (show("ActiveState") === "active" ? true : undefined));
  // With an hour between scans, only file events bring these in.
  await inBucket(await writeFiles("first", 5, 64 * 1024), "the first files in the bucket");
});

test("the unit's sandbox holds, read from inside: user, capabilities, no new privileges, seccomp", () => {
  const pid = mainPid();
  const status = device.run(["cat", `/proc/${pid}/status`]);
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1].trim();
  const uid = device.run(["id", "-u", "flotta-agent"]).trim();
  const gid = device.run(["id", "-g", "flotta-agent"]).trim();
  assert.ok(Number(uid) > 0, "a user of its own, not root");
  assert.is(field("Uid"), [uid, uid, uid, uid].join("\t"));
  assert.is(field("Gid"), [gid, gid, gid, gid].join("\t"));
  // CAP_DAC_READ_SEARCH (bit 2) only: to read the workloads' files, whoever owns them.
  for (const set of ["CapEff", "CapPrm", "CapBnd", "CapAmb"])
    assert.is(field(set), "0000000000000004", set);
  assert.is(field("NoNewPrivs"), "1");
  assert.is(field("Seccomp"), "2", "a seccomp filter (SystemCallFilter) is on");
  // The system is read-only in the unit's mount namespace, even to root; its state dir is not.
  const inUnit = (user: string, script: string) =>
    device.exec(["nsenter", "-t", pid, "-m", "-S", user, "-G", user, "--", "sh", "-c", script]);
  for (const path of [
    "/opt/flotta-agent/probe",
    "/etc/flotta-agent/probe",
    "/usr/probe",
    "/var/probe",
  ]) {
    const r = inUnit("0", `echo x > ${path}`);
    assert.is.not(r.status, 0, `${path} was writable`);
    assert.match(r.stderr, /Read-only file system/, path);
  }
  const home = inUnit("0", "ls -A /root");
  assert.is(
    home.stdout,
    "",
    "ProtectHome: /root (the tarball, the kubeconfig) is hidden and empty",
  );
  const own = inUnit(uid, "echo x > /var/lib/flotta-agent/probe && rm /var/lib/flotta-agent/probe");
  assert.is(own.status, 0, `its state dir: ${own.stderr}`);
});

test("every agent path runs under its SystemCallFilter: events, TLS, lock, token renewal, textfile", async () => {
  const log = journal();
  assert.match(log, /renewed the device token/);
  assert.not.match(log, /SIGSYS|Bad system call|Operation not permitted/);
  assert.ok(
    device.exec(["test", "-s", "/var/lib/flotta-agent/token"]).status === 0,
    "the renewed token in the state dir",
  );
  const metrics = device.run(["cat", TEXTFILE]);
  assert.match(metrics, /^flotta_agent_/m);
  // The state lock is held: a second agent on the same state dir (as the same user) is refused.
  const second = device.exec([
    "systemd-run",
    "--quiet",
    "--wait",
    "--pipe",
    "-p",
    "User=flotta-agent",
    "-p",
    "AmbientCapabilities=CAP_DAC_READ_SEARCH",
    "node",
    "/opt/flotta-agent/flotta-agent.js",
    "sync",
    "--once",
    "--kubeconfig",
    "/etc/flotta-agent/kubeconfig",
    "--device",
    `${ns}/cam`,
    "--state-dir",
    "/var/lib/flotta-agent",
  ]);
  assert.is.not(second.status, 0, second.stdout);
  assert.match(second.stderr, /another agent \(pid \d+\) uses the state dir/, second.stderr);
  // The device's status was reported through the API server.
  await reportedUpload(ns, "cam");
  assert.is(show("NRestarts"), "0", "the agent never crashed");
});

test("MemoryMax and TasksMax are enforced", async () => {
  const cgroup = (controller: string, file: string) =>
    device
      .run(["cat", `/sys/fs/cgroup/${controller}/system.slice/flotta-agent.service/${file}`])
      .trim();
  assert.is(cgroup("memory", "memory.limit_in_bytes"), String(448 * 1024 * 1024));
  assert.is(cgroup("pids", "pids.max"), "64");
  // Far below what Node.js needs: the kernel's OOM killer ends it at once, and systemd restarts
  // it, again and again. SIGKILL is sent by nobody else here (systemd reports "oom-kill" where
  // it can see the OOM event, on cgroup v2; on v1, "signal").
  device.run(["systemctl", "set-property", "--runtime", "flotta-agent", "MemoryMax=24M"]);
  try {
    device.run(["systemctl", "restart", "--no-block", "flotta-agent"]);
    const killed = await eventually(
      "the agent killed by the kernel under MemoryMax=24M",
      () => {
        const main = { status: show("ExecMainStatus"), result: show("Result") };
        return main.status === "9" ? main : undefined;
      },
      60_000,
    );
    assert.ok(["oom-kill", "signal"].includes(killed.result), killed.result);
  } finally {
    device.run(["systemctl", "revert", "flotta-agent"]);
    device.run(["systemctl", "restart", "flotta-agent"]);
  }
  assert.is(cgroup("memory", "memory.limit_in_bytes"), String(448 * 1024 * 1024));
  await eventually("the unit active again", () =>
    show("ActiveState") === "active" ? true : undefined,
  );
});

test("systemctl restart and stop are clean, and no upload is lost", async () => {
  const big = await writeFiles("restart", 8, 12 * 1024 * 1024);
  await eventually("uploads under way", () => (uploads() > 0 ? true : undefined));
  device.run(["systemctl", "restart", "flotta-agent"]);
  await inBucket(big, "every file after the restart", 120_000);
  const more = await writeFiles("stop", 3, 6 * 1024 * 1024);
  device.run(["systemctl", "stop", "flotta-agent"]);
  assert.is(show("ActiveState"), "inactive");
  assert.is(show("Result"), "success", "stopped by SIGTERM within TimeoutStopSec, exit 0");
  assert.not.match(journal(), /State 'stop-sigterm' timed out|Killing process/);
  device.run(["systemctl", "start", "flotta-agent"]);
  await inBucket(more, "the files written around the stop", 120_000);
  // Nothing half-written left behind: no multipart upload open in the bucket.
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  assert.equal(open.Uploads ?? [], [], "a multipart upload left open");
});

test("a reinstall (upgrade) restarts the unit and keeps the index: nothing is sent again", async () => {
  const before = uploads();
  const pid = mainPid();
  const out = install(); // an upgrade: no config source, agent.env kept
  assert.not.match(out, /updated .*agent.env/);
  await eventually("a new main process", () =>
    show("MainPID") !== pid && show("ActiveState") === "active" ? true : undefined,
  );
  const fresh = await writeFiles("after-upgrade", 1, 1024);
  await inBucket(fresh, "a file written after the upgrade");
  assert.is(uploads() - before, 1, "only the new file was uploaded after the reinstall");
});

test.run();

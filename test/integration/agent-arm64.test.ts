/**
 * The arm64 single executable, as on an arm64 device: run under qemu-user-static (with arm64's C
 * libraries from Debian's cross packages), it uploads a tree to the local S3 server and reports
 * its status into the EdgeDevice through the API server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, openSync, readFileSync, readSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { storageFor } from "../support/agent-cli";
import {
  deviceNamespace,
  reportedUpload,
  putConfigSecret,
  writeDeviceKubeconfig,
} from "../support/device-access";
import { tempDir } from "../support/device-files";
import { eventually } from "../support/eventually";
import { kubectl } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { getObject, listKeys, newBucket } from "../support/s3";

const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
const exe = `dist/flotta-agent-${version}-linux-arm64`;
const QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];
const ns = uniqueName("arm64");
let root = "";

const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");

test.before(async () => {
  root = await tempDir("agent-arm64");
  if (!existsSync(exe)) {
    const packed = spawnSync("npm", ["run", "-s", "agent:pack"], { encoding: "utf8" });
    assert.is(packed.status, 0, packed.stderr);
  }
  deviceNamespace(ns, "cam");
});

test.after(async () => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("the executable is arm64 code, and says so under qemu: its version and Node.js", () => {
  const header = Buffer.alloc(20);
  readSync(openSync(exe, "r"), header, 0, 20, 0);
  assert.equal([...header.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], "an ELF file");
  assert.is(header.readUInt16LE(18), 183, "e_machine EM_AARCH64");
  const run = spawnSync(QEMU[0], [...QEMU.slice(1), exe, "--version"], { encoding: "utf8" });
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`^${version.replace(/\./g, "\\.")}\\nNode\\.js 22\\.`));
  assert.match(run.stdout, /single executable/);
});

test("under qemu it uploads a tree and reports status through the API server", async () => {
  const bucket = await newBucket("arm64");
  putConfigSecret(ns, "cam", storageFor(bucket));
  const kubeconfig = join(root, "device.kubeconfig");
  writeDeviceKubeconfig(kubeconfig, ns, "cam");
  const stats = join(root, "volumes", "os-stats", "stats");
  await mkdir(join(stats, "day-1"), { recursive: true });
  const files = new Map<string, string>();
  for (const [name, size] of [
    ["a.json", 1000],
    ["day-1/b.csv", 300_000],
    ["day-1/big.bin", 12 * 1024 * 1024], // multipart, in 8 MiB parts
    ["empty", 0],
  ] as const) {
    const data = randomBytes(size);
    await writeFile(join(stats, name), data);
    files.set(`statistics/${name}`, md5(data));
  }
  const agent = spawn(
    QEMU[0],
    [
      ...QEMU.slice(1),
      exe,
      "run",
      "--kubeconfig",
      kubeconfig,
      "--device",
      `${ns}/cam`,
      "--volumes-dir",
      join(root, "volumes"),
      "--state-dir",
      join(root, "state"),
      "--interval",
      "2",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  agent.stderr.on("data", d => (log += d));
  const exited = new Promise<number | null>(resolve => agent.on("close", resolve));
  try {
    await eventually(
      "the tree in the bucket",
      async () => {
        const keys = await listKeys(bucket);
        return [...files.keys()].every(k => keys.has(k)) ? true : undefined;
      },
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the agent's log:\n${log.slice(-3000)}`);
    });
    for (const [key, sum] of files) assert.is(md5(await getObject(bucket, key)), sum, key);
    const reported = await reportedUpload(ns, "cam", 60_000);
    assert.ok(Date.parse(reported) > 0, reported);
  } finally {
    agent.kill("SIGTERM");
  }
  assert.is(await exited, 0, `the agent did not stop cleanly:\n${log.slice(-2000)}`);
});

test.run();

/**
 * The agent's packages. The .deb installed, configured, upgraded, removed and purged with dpkg in
 * a device whose init is systemd (test/support/systemd-device.ts), its service uploading; the
 * .rpm read with `rpm -qlp` and `rpm -qp --scripts` and installed into a test root (`rpm --root`).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { storageFor } from "../support/agent-cli";
import { deviceNamespace, putConfigSecret, writeDeviceKubeconfig } from "../support/device-access";
import { tempDir } from "../support/device-files";
import { inBucket, unitJournal, unitProperty, writeFiles } from "../support/device-uploads";
import { eventually } from "../support/eventually";
import { kubectl } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { newBucket, serverRequests } from "../support/s3";
import { bootSystemd, type SystemdDevice } from "../support/systemd-device";

const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
const NEWER = `${version}.1`; // an upgrade: the same executable, packaged as a later version
const ns = uniqueName("packages");
let root = "";
let device: SystemdDevice;
let bucket = "";
let stats = "";

const show = (property: string) => unitProperty(device, property);
const uploads = () => serverRequests(bucket).filter(op => op === "s3_PutObject").length;
const newFiles = (prefix: string) => writeFiles(stats, "statistics", prefix, 2, 4096);
const holds = (files: Map<string, string>, what: string) =>
  inBucket(
    bucket,
    files,
    what,
    60_000,
    () => `; the journal ends:\n${unitJournal(device).slice(-3000)}`,
  );

function sh(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: "utf8" });
  assert.is(r.status, 0, `${command} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

test.before(async () => {
  root = await tempDir("agent-packages");
  if (!existsSync(`dist/flotta-agent_${version}_amd64.deb`)) sh("npm", ["run", "-s", "agent:pack"]);
  // The upgrade's package, built by the same script from the same executables.
  sh("bash", [
    "hack/agent-packages.sh",
    NEWER,
    `dist/flotta-agent-${version}`,
    join(root, "newer"),
  ]);
  device = await bootSystemd(join(root, "device"), ns);
  // dpkg's database: this machine's, since the device's /usr is this machine's.
  const dpkg = join(device.rootfs, "var/lib/dpkg");
  for (const dir of ["info", "updates", "triggers"])
    await mkdir(join(dpkg, dir), { recursive: true });
  copyFileSync("/var/lib/dpkg/status", join(dpkg, "status"));
  await writeFile(join(dpkg, "available"), "");
  copyFileSync(`dist/flotta-agent_${version}_amd64.deb`, join(device.rootfs, "root/old.deb"));
  copyFileSync(
    join(root, "newer", `flotta-agent_${NEWER}_amd64.deb`),
    join(device.rootfs, "root/new.deb"),
  );

  deviceNamespace(ns, "cam");
  bucket = await newBucket("packages");
  putConfigSecret(ns, "cam", storageFor(bucket));
  writeDeviceKubeconfig(join(device.rootfs, "root/device.kubeconfig"), ns, "cam");
  stats = await device.statsFolder();
});

test.after(async () => {
  await device?.stop();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("dpkg -i: user and folders from sysusers.d and tmpfiles.d; configured, the unit runs the executable and uploads", async () => {
  const out = device.run(["dpkg", "-i", "/root/old.deb"]);
  assert.match(out, /set FLOTTA_AGENT_ARGS in \/etc\/flotta-agent\/agent.env/);
  assert.is(device.exec(["systemctl", "is-enabled", "flotta-agent"]).stdout.trim(), "disabled");
  assert.match(
    device.run(["getent", "passwd", "flotta-agent"]),
    /:\/nonexistent:\/usr\/sbin\/nologin/,
  );
  assert.is(
    device.run(["stat", "-c", "%a %U %G", "/var/lib/flotta-agent"]).trim(),
    "700 flotta-agent flotta-agent",
  );
  assert.is(
    device.run(["stat", "-c", "%a %U %G", "/etc/flotta-agent"]).trim(),
    "750 root flotta-agent",
  );
  // What the README tells the user: the kubeconfig, agent.env, then enable the unit.
  device.run([
    "install",
    "-o",
    "root",
    "-g",
    "flotta-agent",
    "-m",
    "0640",
    "/root/device.kubeconfig",
    "/etc/flotta-agent/kubeconfig",
  ]);
  device.run(
    ["sh", "-c", "cat > /etc/flotta-agent/agent.env"],
    `FLOTTA_AGENT_ARGS="--kubeconfig /etc/flotta-agent/kubeconfig --device ${ns}/cam --state-dir /var/lib/flotta-agent --interval 3600"\n`,
  );
  device.run(["systemctl", "enable", "--now", "flotta-agent"]);
  const pid = await eventually("the service running", () => {
    const main = show("MainPID");
    return show("ActiveState") === "active" && main !== "0" ? main : undefined;
  });
  assert.is(
    device.run(["readlink", `/proc/${pid}/exe`]).trim(),
    "/usr/bin/flotta-agent",
    "no Node.js: the executable",
  );
  await holds(await newFiles("installed"), "files written after the install");
});

test("an upgrade (dpkg -i of a later version) restarts the service, keeps agent.env and the index", async () => {
  const env = device.run(["cat", "/etc/flotta-agent/agent.env"]);
  const pid = show("MainPID");
  const before = uploads();
  device.run(["dpkg", "-i", "/root/new.deb"]);
  assert.is(device.run(["dpkg-query", "-W", "-f", "${Version}", "flotta-agent"]), NEWER);
  assert.is(device.run(["cat", "/etc/flotta-agent/agent.env"]), env, "the user's agent.env kept");
  await eventually("a new main process", () =>
    show("ActiveState") === "active" && !["0", pid].includes(show("MainPID")) ? true : undefined,
  );
  await holds(await newFiles("upgraded"), "files written after the upgrade");
  assert.is(uploads() - before, 2, "only the new files sent: the index was kept");
});

test("dpkg -r stops the service and keeps its state; dpkg -P removes it", async () => {
  device.run(["dpkg", "-r", "flotta-agent"]);
  assert.is(show("ActiveState"), "inactive");
  assert.is(
    device.exec(["test", "-e", "/usr/bin/flotta-agent"]).status,
    1,
    "the executable removed",
  );
  assert.match(device.run(["ls", "/var/lib/flotta-agent"]), /\S/, "the state (the index) kept");
  assert.is(device.exec(["test", "-f", "/etc/flotta-agent/agent.env"]).status, 0, "config kept");
  device.run(["dpkg", "-P", "flotta-agent"]);
  for (const gone of ["/var/lib/flotta-agent", "/etc/flotta-agent"])
    assert.is(device.exec(["test", "-e", gone]).status, 1, `${gone} left after purge`);
});

test("the .rpm: its files, config file and scriptlets, and an install into a test root", () => {
  const rpm = `dist/flotta-agent-${version}-1.x86_64.rpm`;
  assert.equal(sh("rpm", ["-qlp", rpm]).trim().split("\n"), [
    "/etc/flotta-agent",
    "/etc/flotta-agent/agent.env",
    "/usr/bin/flotta-agent",
    "/usr/lib/systemd/system/flotta-agent.service",
    "/usr/lib/sysusers.d/flotta-agent.conf",
    "/usr/lib/tmpfiles.d/flotta-agent.conf",
    "/usr/share/doc/flotta-agent/README.md",
  ]);
  assert.is(sh("rpm", ["-qpc", rpm]).trim(), "/etc/flotta-agent/agent.env");
  assert.is(
    sh("rpm", ["-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", rpm]),
    `flotta-agent ${version} x86_64`,
  );
  const arm = `dist/flotta-agent-${version}-1.aarch64.rpm`;
  assert.is(sh("rpm", ["-qp", "--qf", "%{ARCH}", arm]), "aarch64");
  const scripts = sh("rpm", ["-qp", "--scripts", rpm]);
  const part = (name: string) =>
    new RegExp(`${name} scriptlet[^\\n]*\\n([\\s\\S]*?)(?=\\n\\S+ scriptlet|$)`).exec(
      scripts,
    )?.[1] ?? "";
  assert.match(part("postinstall"), /systemd-sysusers \/usr\/lib\/sysusers.d\/flotta-agent.conf/);
  assert.match(
    part("postinstall"),
    /systemd-tmpfiles --create \/usr\/lib\/tmpfiles.d\/flotta-agent.conf/,
  );
  assert.match(
    part("postinstall"),
    /"\$1" -eq 1 .*\n\s*systemctl enable --now flotta-agent.service/,
  );
  assert.match(
    part("preuninstall"),
    /"\$1" -eq 0 [\s\S]*systemctl disable --now flotta-agent.service/,
  );
  assert.match(
    part("postuninstall"),
    /"\$1" -ge 1 [\s\S]*systemctl try-restart flotta-agent.service/,
  );
  assert.not.match(scripts, /useradd/, "the user comes from sysusers.d");

  const testRoot = join(root, "rpm-root");
  sh("rpm", ["--root", testRoot, "--initdb"]);
  // Scriptlets need the device's systemd: they are read above, not run in this root.
  sh("rpm", ["--root", testRoot, "-i", "--nodeps", "--noscripts", rpm]);
  assert.is(
    sh("rpm", ["--root", testRoot, "-q", "flotta-agent"]).trim(),
    `flotta-agent-${version}-1.x86_64`,
  );
  assert.is(statSync(join(testRoot, "usr/bin/flotta-agent")).mode & 0o777, 0o755);
  assert.match(sh(join(testRoot, "usr/bin/flotta-agent"), ["--version"]), /single executable/);
  assert.match(
    readFileSync(join(testRoot, "usr/lib/systemd/system/flotta-agent.service"), "utf8"),
    /^ExecStart=\/usr\/bin\/flotta-agent run \$FLOTTA_AGENT_ARGS$/m,
  );
  // %config(noreplace): a changed agent.env is kept as .rpmsave when the package goes.
  const env = join(testRoot, "etc/flotta-agent/agent.env");
  spawnSync("sh", ["-c", `echo 'FLOTTA_AGENT_ARGS="--config x"' > ${env}`]);
  sh("rpm", ["--root", testRoot, "-e", "--noscripts", "flotta-agent"]);
  assert.ok(existsSync(`${env}.rpmsave`), "the changed agent.env kept as agent.env.rpmsave");
  assert.not.ok(existsSync(join(testRoot, "usr/bin/flotta-agent")));
});

test.run();

/**
 * A device with systemd as its init, for the agent's unit: a runc container of the test's own,
 * booting this machine's systemd over a minimal root (the host's /usr under an overlay of its own,
 * a small /etc of its own, tmpfs /run and /tmp). It has its own PID, mount, IPC, UTS and cgroup namespaces and a
 * writable cgroup mount, so systemd enforces MemoryMax and TasksMax; it shares the host's network,
 * where the local API server and S3 server listen on 127.0.0.1. /proc/sys and /sys are read-only
 * to it and it holds no capability to load modules, set the clock or change the network, so its
 * systemd changes nothing global. Needs runc (Debian's package; hack/node.sh installs it).
 */
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { eventually } from "./eventually";

/** Capabilities by bit number (linux/capability.h). */
const CAPABILITIES = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
  "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
  "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
  "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
  "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
  "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]; // prettier-ignore
/** Kept from the container: what could change the machine outside it. */
const WITHHELD = ["SYS_MODULE", "SYS_TIME", "SYS_BOOT", "NET_ADMIN", "SYS_RAWIO", "MAC_ADMIN"];

/** Units of a full machine that have nothing to do in this one (or would reach outside it). */
const MASKED = [
  "systemd-sysctl.service",
  "systemd-modules-load.service",
  "systemd-binfmt.service",
  "proc-sys-fs-binfmt_misc.automount",
  "sys-kernel-config.mount",
  "sys-kernel-debug.mount",
  "sys-kernel-tracing.mount",
  "sys-fs-fuse-connections.mount",
  "dev-hugepages.mount",
  "systemd-firstboot.service",
  "systemd-repart.service",
  "systemd-random-seed.service",
  "systemd-logind.service",
  "getty.target",
  "systemd-udevd.service",
  "systemd-udev-trigger.service",
];

export interface SystemdDevice {
  /** The device's root directory, as seen from the host. */
  rootfs: string;
  /** The seed workload's data folder (os-stats, source "stats"), made; as the host sees it. */
  statsFolder(): Promise<string>;
  /** A command inside the device, as root. */
  exec(args: string[], input?: string): SpawnSyncReturns<string>;
  /** A command inside the device that must succeed; its stdout. */
  run(args: string[], input?: string): string;
  /** Shuts systemd down, removes the container and its cgroups. */
  stop(): Promise<void>;
}

function heldCapabilities(): string[] {
  const bounding = BigInt(
    "0x" + /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync("/proc/self/status", "utf8"))![1],
  );
  return CAPABILITIES.filter((name, bit) => (bounding >> BigInt(bit)) & 1n)
    .filter(name => !WITHHELD.includes(name))
    .map(name => `CAP_${name}`);
}

function makeRoot(rootfs: string): void {
  for (const dir of [
    "etc/systemd/system",
    "proc",
    "sys",
    "dev",
    "run",
    "tmp",
    "usr",
    "opt",
    "root",
    "home",
    "var/tmp",
    "var/log",
    "var/lib/node_exporter/textfile_collector",
    "var/local/yggdrasil/device/volumes",
  ])
    mkdirSync(join(rootfs, dir), { recursive: true });
  for (const dir of ["bin", "sbin", "lib", "lib64"]) symlinkSync(`usr/${dir}`, join(rootfs, dir));
  const etc = (name: string, text: string) => writeFileSync(join(rootfs, "etc", name), text);
  // root, nobody and D-Bus's user (systemctl and systemd-run talk to systemd through D-Bus).
  etc(
    "passwd",
    "root:x:0:0:root:/root:/bin/sh\nmessagebus:x:100:102::/nonexistent:/usr/sbin/nologin\n" +
      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  );
  etc("group", "root:x:0:\nsystemd-journal:x:101:\nmessagebus:x:102:\nnogroup:x:65534:\n");
  etc(
    "shadow",
    "root:*:20000:0:99999:7:::\nmessagebus:*:20000::::::\nnobody:*:20000:0:99999:7:::\n",
  );
  etc("gshadow", "root:*::\nsystemd-journal:!::\nmessagebus:!::\nnogroup:*::\n");
  etc("hostname", "edge-device\n");
  etc("machine-id", "");
  for (const name of ["login.defs", "nsswitch.conf"])
    copyFileSync(join("/etc", name), join(rootfs, "etc", name));
  symlinkSync("../usr/lib/os-release", join(rootfs, "etc/os-release"));
  for (const unit of MASKED) symlinkSync("/dev/null", join(rootfs, "etc/systemd/system", unit));
}

function runtimeSpec(rootfs: string, usr: string, cgroupsPath: string): object {
  const caps = heldCapabilities();
  const tmpfs = (destination: string, mode = "755", nodev = true) => ({
    destination,
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", ...(nodev ? ["nodev"] : []), `mode=${mode}`],
  });
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["/usr/lib/systemd/systemd"],
      env: ["container=runc", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"],
      cwd: "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname: "edge-device",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      tmpfs("/dev", "755", false), // runc makes the device nodes here
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
      },
      tmpfs("/dev/shm", "1777"),
      {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      },
      {
        destination: "/sys/fs/cgroup",
        type: "cgroup",
        source: "cgroup",
        options: ["nosuid", "noexec", "nodev", "relatime", "rw"],
      },
      tmpfs("/run"),
      tmpfs("/tmp", "1777"),
      // The host's /usr under an overlay: packages install into the device's upper layer.
      {
        destination: "/usr",
        type: "overlay",
        source: "overlay",
        options: [`lowerdir=/usr`, `upperdir=${usr}/upper`, `workdir=${usr}/work`, "nodev"],
      },
    ],
    linux: {
      namespaces: [
        { type: "pid" },
        { type: "mount" },
        { type: "ipc" },
        { type: "uts" },
        { type: "cgroup" },
      ],
      cgroupsPath,
      maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

/** Boots systemd in a new container under `dir` (its root, runc's state and the console log). */
export async function bootSystemd(dir: string, name: string): Promise<SystemdDevice> {
  const rootfs = join(dir, "rootfs");
  const state = join(dir, "runc");
  const bundle = join(dir, "bundle");
  const usr = join(dir, "usr");
  for (const d of [bundle, join(usr, "upper"), join(usr, "work")])
    mkdirSync(d, { recursive: true });
  makeRoot(rootfs);
  const cgroupParent = "edge-device";
  writeFileSync(
    join(bundle, "config.json"),
    JSON.stringify(runtimeSpec(rootfs, usr, `/${cgroupParent}/${name}`)),
  );
  const runc = (args: string[], input?: string) =>
    spawnSync("runc", ["--root", state, ...args], { encoding: "utf8", input, timeout: 120_000 });
  const console = openSync(join(dir, "console.log"), "a");
  const started = spawn("runc", ["--root", state, "run", "-d", "--bundle", bundle, name], {
    stdio: ["ignore", console, console],
  });
  const code = await new Promise<number>(resolve => started.on("exit", c => resolve(c ?? -1)));
  if (code !== 0) throw new Error(`runc run failed (${code}); see ${join(dir, "console.log")}`);

  const device: SystemdDevice = {
    rootfs,
    statsFolder: async () => {
      const dir = join(rootfs, "var/local/yggdrasil/device/volumes/os-stats/stats");
      await mkdir(dir, { recursive: true });
      return dir;
    },
    exec: (args, input) => runc(["exec", name, ...args], input),
    run: (args, input) => {
      const r = device.exec(args, input);
      if (r.status !== 0)
        throw new Error(
          `${args.join(" ")} in the device failed (${r.status}): ${r.stderr}${r.stdout}`,
        );
      return r.stdout;
    },
    async stop() {
      runc(["kill", name, "37"]); // SIGRTMIN+3: systemd's orderly halt
      await eventually(
        "systemd to halt",
        () => (runc(["state", name]).stdout.includes('"stopped"') ? true : undefined),
        30_000,
      ).catch(() => runc(["kill", name, "KILL"]));
      runc(["delete", "--force", name]);
      for (const hierarchy of [
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "memory",
        "pids",
        "systemd",
        "unified",
      ])
        try {
          rmdirSync(`/sys/fs/cgroup/${hierarchy}/${cgroupParent}`);
        } catch {
          // not made in this hierarchy, or another device still there
        }
    },
  };
  // Booted once systemd says so ("degraded" is a unit of the host's /usr failing here: listed).
  const booted = await eventually(
    "systemd to finish booting",
    () => {
      const r = device.exec(["systemctl", "is-system-running"]);
      const s = r.stdout.trim();
      return s === "running" || s === "degraded" ? s : undefined;
    },
    60_000,
  );
  if (booted === "degraded")
    process.stdout.write(
      `\n    systemd degraded; failed units: ${device.exec(["systemctl", "--failed", "--plain", "--no-legend"]).stdout}\n`,
    );
  return device;
}

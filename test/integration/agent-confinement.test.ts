/**
 * A hostile workload against the agent, on the real S3 server. The workload controls its volume
 * (`volumes/<workload>/...`): every symlink, FIFO, socket and device node it can make, and swaps
 * of files and folders for symlinks while passes run. The agent must never read a byte from
 * outside `<volumes-dir>/<workload>/<source>`: the bucket is searched for the host's bytes after
 * every pass. Races run 25 passes here; EDGE_LONG_TESTS=1 runs 200.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { runAgent, storageFor, writeConfig } from "../support/agent-cli";
import { tempDir, writeTree } from "../support/device-files";
import { getObject, listKeys, newBucket } from "../support/s3";

const SECRET = "HOST-SECRET-6f1c2a";
const PASSES = process.env.EDGE_LONG_TESTS ? 200 : 25;
let root = "";
const volumes = () => join(root, "volumes");
const host = () => join(root, "host");
const state = () => join(root, "state");
const config = () => join(root, "config.json");
const stats = () => join(volumes(), "os-stats", "stats");
const sync = () =>
  runAgent([
    "sync",
    "--once",
    "--config",
    config(),
    "--volumes-dir",
    volumes(),
    "--state-dir",
    state(),
  ]);

/** Every object's bytes; fails if any holds a host secret or the host's passwd file. */
async function assertNoHostBytes(bucket: string): Promise<Map<string, string>> {
  const passwd = readFileSync("/etc/passwd", "utf8");
  const objects = new Map<string, string>();
  for (const key of (await listKeys(bucket)).keys()) {
    const text = (await getObject(bucket, key)).toString();
    assert.not.ok(text.includes(SECRET), `${key} holds bytes from outside the volume`);
    assert.ok(!passwd || text !== passwd, `${key} holds /etc/passwd`);
    objects.set(key, text);
  }
  return objects;
}

test.before.each(async () => {
  root = await tempDir("agent-confinement");
  await writeTree(host(), {
    "secret.txt": SECRET,
    "data.txt": SECRET,
    "inner.txt": SECRET,
    "only-on-host.txt": SECRET,
    "b/x.txt": SECRET, // so that deep/a/b (a -> host) exists
  });
});
test.after.each(async () => {
  await rm(root, { recursive: true, force: true });
});

test("symlinks out of the tree, FIFOs, sockets and devices are never read; the pass completes", async () => {
  const bucket = await newBucket("confine");
  await writeConfig(config(), {
    storage: storageFor(bucket),
    workloads: [
      { name: "os-stats", paths: [{ source: "stats", target: "statistics" }] },
      { name: "other", paths: [{ source: "private", target: "other" }] },
      { name: "sneaky", paths: [{ source: "linked", target: "sneaky" }] },
      { name: "deep", paths: [{ source: "a/b", target: "deep" }] },
    ],
  });
  await writeTree(stats(), { "legit.txt": "legit", "sub/inner.txt": "inner" });
  await writeTree(join(volumes(), "other", "private"), { "x.txt": "other workload's" });
  await writeFile(join(root, "kubeconfig"), `token: ${SECRET}`);
  const s = stats();
  const links: [string, string][] = [
    [join(host(), "secret.txt"), "abs-file"], // 1. an absolute link to a host file
    ["../../../host/secret.txt", "rel-file"], // 2. a relative one climbing out
    [join(volumes(), "other", "private", "x.txt"), "other-workload"], // 3. another workload's file
    [join(root, "kubeconfig"), "kubeconfig"], // 4. the agent's kubeconfig
    [state(), "state-dir"], // 5. the agent's state dir
    ["/", "root-dir"], // 6. the host's /
    ["/etc", "etc-dir"], // 7. the host's /etc
    ["/etc/passwd", "passwd"], // 8. a host file that exists everywhere
    [host(), "sub/host-dir"], // 9. a folder link deeper down
    ["loop-b", "loop-a"], // 10. a symlink loop
    ["loop-a", "loop-b"],
    ["legit.txt", "alias.txt"], // a link inside the tree: followed, as the README says
  ];
  for (const [target, name] of links) await symlink(target, join(s, name));
  execFileSync("mkfifo", [join(s, "fifo")]); // 11. a FIFO: opening it must not block
  const socket = createServer().listen(join(s, "socket")); // 12. a socket
  execFileSync("mknod", [join(s, "null-device"), "c", "1", "3"]); // 13. a device node
  // 14. a source folder that is a symlink to a host folder; 15. one reached through a symlink.
  await mkdir(join(volumes(), "sneaky"), { recursive: true });
  await symlink(host(), join(volumes(), "sneaky", "linked"));
  await mkdir(join(volumes(), "deep"), { recursive: true });
  await symlink(host(), join(volumes(), "deep", "a"));

  for (let pass = 0; pass < 2; pass++) {
    // The second pass runs with an index in the state dir (a link target of case 5).
    const run = await sync();
    assert.match(run.stdout, /files seen/, run.stderr);
    assert.match(run.stderr, /the source folder is a symlink: not followed/);
    assert.match(run.stderr, /the source folder is reached through a symlink/);
  }
  socket.close();
  const objects = await assertNoHostBytes(bucket);
  assert.equal([...objects.keys()].sort(), [
    "other/x.txt",
    "statistics/alias.txt",
    "statistics/legit.txt",
    "statistics/sub/inner.txt",
  ]);
  assert.is(objects.get("statistics/alias.txt"), "legit");
});

/** A bash loop that keeps swapping things for symlinks to the host, until killed. */
// A SIGTERM ends the loop after the round it is in, so no `mv` is left running when it exits
// (a SIGKILL killed the shell but not its child, which could move a folder away after the cleanup).
function swapper(cwd: string, script: string): ChildProcess {
  const loop = `trap 'stop=1' TERM; while [ -z "$stop" ]; do ${script}; done`;
  return spawn("bash", ["-c", loop], { cwd, stdio: "ignore" });
}

test(`files, folders and the source folder swapped for symlinks during ${PASSES} passes: no host byte is read`, async () => {
  const bucket = await newBucket("confine-race");
  await writeConfig(config(), {
    storage: storageFor(bucket),
    workloads: [{ name: "os-stats", paths: [{ source: "stats", target: "statistics" }] }],
  });
  await writeTree(stats(), { "data.txt": "legit", "sub/inner.txt": "legit inner" });
  const h = host();
  const loops = [
    // A file becomes a symlink to a host file and back (new bytes each time, so it is re-sent).
    swapper(
      stats(),
      `ln -sfn ${h}/data.txt data.lnk; mv -T data.lnk data.txt; printf "legit $RANDOM" > data.new; mv -T data.new data.txt`,
    ),
    // A folder is moved away and a symlink to a host folder put in its place, then back.
    swapper(
      stats(),
      `mv -T sub sub.real 2>/dev/null && { ln -sfn ${h} sub; rm -f sub; mv -T sub.real sub; }; printf "inner $RANDOM" > sub/inner.txt 2>/dev/null; sleep 0.02`,
    ),
    // The source folder itself, likewise.
    swapper(
      join(volumes(), "os-stats"),
      `mv -T stats stats.real 2>/dev/null && { ln -sfn ${h} stats; rm -f stats; mv -T stats.real stats; }; sleep 0.05`,
    ),
  ];
  let sent = 0;
  try {
    for (let pass = 0; pass < PASSES; pass++) {
      const run = await sync();
      assert.match(run.stdout + run.stderr, /files seen|source folder/, run.stderr);
      sent += Number(/(\d+) sent/.exec(run.stdout)?.[1] ?? 0);
      await assertNoHostBytes(bucket);
    }
  } finally {
    await Promise.all(
      loops.map(loop => new Promise(resolve => (loop.once("exit", resolve), loop.kill("SIGTERM")))),
    );
  }
  // A round cut short leaves a folder under its .real name: put it back.
  for (const dir of [stats(), join(stats(), "sub")]) {
    await rm(dir, { force: true }).catch(() => undefined); // a symlink left in its place
    await rename(`${dir}.real`, dir).catch(() => undefined);
  }
  assert.ok(
    sent > PASSES / 2,
    `the swapped files were sent only ${sent} times: the race was not exercised`,
  );
  const keys = [...(await listKeys(bucket)).keys()];
  assert.not.ok(
    keys.some(k => k.includes("only-on-host") || k.includes("secret")),
    keys.join(),
  );
  assert.ok((await readdir(stats())).length > 0);
});

test.run();

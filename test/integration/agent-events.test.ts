/**
 * `flotta-agent run` follows file events: a new file goes up without waiting for the interval
 * (set to an hour here, so only an event can explain an upload), and the full scan is the safety
 * net for what events miss: events turned off, too many directories to watch, and writes that
 * inotify does not report (through a shared mapping). Index entries of gone files and removed
 * workloads are pruned; the bucket keeps the objects.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { IndexStore } from "../../agent/sync/index-store";
import {
  runAgent,
  startAgent,
  storageFor,
  writeConfig,
  type RunningAgent,
} from "../support/agent-cli";
import { tempDir, writeTree } from "../support/device-files";
import { eventually } from "../support/eventually";
import { getObject, listKeys, newBucket } from "../support/s3";

const HOUR = "3600";
let root = "";
let bucket = "";
let running: RunningAgent | undefined;
const volumes = () => join(root, "volumes");
const source = () => join(volumes(), "cam", "frames");
const state = () => join(root, "state");
const config = () => join(root, "config.json");
const device = () => ["--config", config(), "--volumes-dir", volumes(), "--state-dir", state()];
const workloads = [{ name: "cam", paths: [{ source: "frames", target: "frames" }] }];

test.before.each(async () => {
  root = await tempDir("agent-events");
  bucket = await newBucket("events");
  await writeConfig(config(), { storage: storageFor(bucket), workloads });
});
test.after.each(async () => {
  await running?.stop();
  running = undefined;
  await rm(root, { recursive: true, force: true });
});

const objectIs = (key: string, content: string) => async () => {
  try {
    return (await getObject(bucket, key)).toString() === content ? true : undefined;
  } catch {
    return undefined;
  }
};
const logged = (pattern: RegExp) => () => (pattern.test(running!.logs()) ? true : undefined);

test("a file written while the agent runs is uploaded without waiting for the interval", async () => {
  await writeTree(source(), { "first.txt": "first", "old/dir/a.txt": "a" });
  running = startAgent([...device(), "--interval", HOUR, "--rescan", HOUR]);
  await eventually("the start's full scan", objectIs("frames/old/dir/a.txt", "a"));
  await eventually("events followed", logged(/following file events/));
  await writeFile(join(source(), "new.txt"), "written after the scan");
  await eventually("a new file", objectIs("frames/new.txt", "written after the scan"));
  await writeFile(join(source(), "old/dir/a.txt"), "changed");
  await eventually(
    "a changed file in a watched subfolder",
    objectIs("frames/old/dir/a.txt", "changed"),
  );
  await mkdir(join(source(), "made/later/deep"), { recursive: true });
  await writeFile(join(source(), "made/later/deep/b.txt"), "b");
  await eventually(
    "a file in folders made after the scan",
    objectIs("frames/made/later/deep/b.txt", "b"),
  );
  await writeFile(join(source(), "made/later/deep/c.txt"), "c");
  await eventually(
    "a file in a folder watched since",
    objectIs("frames/made/later/deep/c.txt", "c"),
  );
  // A writer's temp file renamed into place: the final name goes up with the final bytes.
  await writeFile(join(root, "tmp.part"), "renamed in");
  await rename(join(root, "tmp.part"), join(source(), "moved.txt"));
  await eventually("a file renamed into the folder", objectIs("frames/moved.txt", "renamed in"));
  assert.equal(
    (running.logs().match(/"kind":"scan"/g) ?? []).length,
    1,
    "one full scan (at start)",
  );
});

test("a folder swapped for a symlink after it was watched: nothing outside is read", async () => {
  const outside = join(root, "outside");
  await mkdir(outside);
  await writeTree(source(), { "sub/a.txt": "a" });
  running = startAgent([...device(), "--interval", HOUR, "--rescan", HOUR]);
  await eventually("the start's full scan", objectIs("frames/sub/a.txt", "a"));
  await rename(join(source(), "sub"), join(root, "sub-moved-out"));
  await symlink(outside, join(source(), "sub"));
  await writeFile(join(outside, "secret.txt"), "outside the volume");
  await writeFile(join(root, "sub-moved-out", "b.txt"), "moved out of the volume");
  await writeFile(join(source(), "after.txt"), "after");
  await eventually("a later file", objectIs("frames/after.txt", "after"));
  await eventually(
    "the symlink noted",
    logged(/a symlink that leads out of the source folder or to a folder/),
  );
  const keys = [...(await listKeys(bucket)).keys()].sort();
  assert.equal(keys, ["frames/after.txt", "frames/sub/a.txt"]);
});

test("a folder replaced at the same path is watched again: later files in it go up", async () => {
  await writeTree(source(), { "sub/a.txt": "a" });
  running = startAgent([...device(), "--interval", HOUR, "--rescan", HOUR]);
  await eventually("the start's full scan", objectIs("frames/sub/a.txt", "a"));
  await eventually("events followed", logged(/following file events/));
  await rename(join(source(), "sub"), join(root, "sub-old"));
  await mkdir(join(source(), "sub"));
  await writeFile(join(source(), "sub", "b.txt"), "b");
  await eventually("a file in the new folder", objectIs("frames/sub/b.txt", "b"));
  // The watch on the old folder (same path, other inode) must not stand for the new one.
  await writeFile(join(source(), "sub", "c.txt"), "c");
  await eventually("a later file in the new folder", objectIs("frames/sub/c.txt", "c"));
});

test("a source folder made after the start (a workload that had not written yet) is found at the interval, not the rescan", async () => {
  await mkdir(volumes(), { recursive: true });
  running = startAgent([...device(), "--interval", "1", "--rescan", HOUR]);
  await eventually("events followed", logged(/following file events/));
  await writeTree(source(), { "late.txt": "late" });
  await eventually(
    "the file in the folder made later",
    objectIs("frames/late.txt", "late"),
    15_000,
  );
  // Watched from then on: a file in it goes up by its event, with no scan for an hour.
  await eventually("the folder watched", logged(/"sent":1,/));
  await writeTree(source(), { "next.txt": "next" });
  await eventually("the next file, by its event", objectIs("frames/next.txt", "next"), 15_000);
});

test("events turned off: the interval scan finds new files, and says so", async () => {
  await writeTree(source(), { "a.txt": "a" });
  running = startAgent([...device(), "--no-events", "--interval", "1"]);
  await eventually("the first file", objectIs("frames/a.txt", "a"));
  await writeTree(source(), { "x/b.txt": "b" });
  await eventually("a file found by a scan", objectIs("frames/x/b.txt", "b"));
  assert.match(
    running.logs(),
    /file events are not used: scanning every interval.*events turned off/,
  );
});

test("more folders than watches allowed: events are given up, the interval scan finds every file", async () => {
  const tree: Record<string, string> = {};
  for (let i = 0; i < 5; i++) tree[`d${i}/f.txt`] = `f${i}`;
  await writeTree(source(), tree);
  running = startAgent([...device(), "--max-watches", "3", "--interval", "1"]);
  await eventually("the first files", objectIs("frames/d4/f.txt", "f4"));
  await eventually("the fallback said", logged(/file events are not used.*--max-watches/));
  await writeTree(source(), { "d2/new.txt": "new", "e/g.txt": "g" });
  await eventually("files found by the interval scan", objectIs("frames/e/g.txt", "g"));
  await eventually("and the other one", objectIs("frames/d2/new.txt", "new"));
});

test("a write inotify does not report (a shared mapping) is found by the safety scan", async () => {
  await writeTree(source(), { "mapped.bin": "aaaaaaaa" });
  running = startAgent([...device(), "--interval", HOUR, "--rescan", "2"]);
  await eventually("the first upload", objectIs("frames/mapped.bin", "aaaaaaaa"));
  // Writes through mmap raise no inotify event; they do move mtime and ctime.
  execFileSync("python3", [
    "-c",
    "import mmap,sys\nf=open(sys.argv[1],'r+b')\nm=mmap.mmap(f.fileno(),0)\nm[0:8]=b'bbbbbbbb'\nm.flush()\nm.close()\nf.close()",
    join(source(), "mapped.bin"),
  ]);
  await eventually("the mapped write", objectIs("frames/mapped.bin", "bbbbbbbb"));
  // The pass is logged when it ends, a moment after its upload is in the bucket.
  const passes = await eventually("the pass that sent it, logged", () => {
    const sent = running!
      .logs()
      .split("\n")
      .filter(line => /"sent":1,/.test(line));
    return sent.length >= 2 ? sent : undefined;
  });
  assert.equal(
    passes.map(line => /"kind":"(\w+)"/.exec(line)?.[1]),
    ["scan", "scan"],
    "sent by the start's scan, then by a safety scan (no event named it)",
  );
});

test("pruning: entries of gone files and of a removed workload go; the objects stay; a returning workload is adopted", async () => {
  const two = [...workloads, { name: "mic", paths: [{ source: "clips", target: "clips" }] }];
  await writeConfig(config(), { storage: storageFor(bucket), workloads: two });
  await writeTree(source(), { "a.txt": "a", "b.txt": "b", "sub/c.txt": "c" });
  await writeTree(join(volumes(), "mic", "clips"), { "m.txt": "m" });
  const sync = () => runAgent(["sync", "--once", ...device()]);
  const indexKeys = async () => {
    const store = new IndexStore(state());
    const loaded = await store.load({ endpoint: storageFor(bucket).endpoint, bucket });
    return [...loaded.index.files.keys()].sort();
  };
  assert.is((await sync()).status, 0);
  assert.equal(await indexKeys(), [
    "clips/m.txt",
    "frames/a.txt",
    "frames/b.txt",
    "frames/sub/c.txt",
  ]);
  await rm(join(source(), "b.txt"));
  await rm(join(source(), "sub"), { recursive: true });
  let run = await sync();
  assert.match(run.stderr, /"pruned":2/);
  assert.equal(await indexKeys(), ["clips/m.txt", "frames/a.txt"]);
  await writeConfig(config(), { storage: storageFor(bucket), workloads });
  run = await sync();
  assert.match(run.stderr, /"pruned":1/);
  assert.equal(await indexKeys(), ["frames/a.txt"]);
  const status = await runAgent(["status", "--state-dir", state()]);
  assert.match(status.stdout, /: 1 files/);
  assert.not.match(status.stdout, /mic:/);
  assert.equal([...(await listKeys(bucket)).keys()].sort(), [
    "clips/m.txt",
    "frames/a.txt",
    "frames/b.txt",
    "frames/sub/c.txt",
  ]);
  await writeConfig(config(), { storage: storageFor(bucket), workloads: two });
  run = await sync();
  assert.match(
    run.stdout,
    /0 sent .*1 already in the bucket/,
    "the returning workload's file was sent again",
  );
});

test.run();

/**
 * Local retention (a data path's `retention`): files are deleted from the device only once their
 * objects are confirmed byte-exact in the bucket; a size cap deletes the oldest confirmed files
 * first; with the bucket unreachable nothing is deleted and the cap shows as disk pressure.
 * Real agent, real S3 server (behind a TCP proxy that can be cut).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runAgent, storageFor } from "../support/agent-cli";
import { writeTree } from "../support/device-files";
import { testDevice } from "../support/test-device";
import { eventually } from "../support/eventually";
import { startTcpProxy, type TcpProxy } from "../support/fault-proxy";
import { getObject, listKeys, newBucket } from "../support/s3";
import { testEnv } from "../support/env";

let proxy: TcpProxy | undefined;
const device = testDevice(test, "agent-retention");
const { configure, source } = device;
test.after.each(async () => {
  await proxy?.stop();
  proxy = undefined;
});
const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");
const names = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort();

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await names(dir)) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) total += s.size;
  }
  return total;
}

test("deleteAfterUpload: confirmed files go, their objects are byte-exact; excluded files and links stay", async () => {
  const bucket = await newBucket("retention-delete");
  await configure(bucket, { exclude: ["*.tmp"], retention: { deleteAfterUpload: true } });
  const files = {
    "a.csv": randomBytes(1000),
    "sub/b.csv": randomBytes(300_000),
    "c.tmp": randomBytes(10),
  };
  await writeTree(source(), files);
  const outside = join(device.root, "outside.txt");
  await writeFile(outside, "outside");
  await symlink(outside, join(source(), "out-link.csv"));
  await symlink("a.csv", join(source(), "in-link.csv"));
  const run = await runAgent(["sync", "--once", ...device.args()]);
  assert.is(run.status, 0, run.stderr);
  const objects = await listKeys(bucket);
  assert.equal([...objects.keys()].sort(), ["out/a.csv", "out/in-link.csv", "out/sub/b.csv"]);
  assert.is(md5(await getObject(bucket, "out/a.csv")), md5(files["a.csv"]));
  assert.is(md5(await getObject(bucket, "out/sub/b.csv")), md5(files["sub/b.csv"]));
  // The files confirmed in the bucket are gone; the excluded file, both links and the file
  // outside stay. (a.csv was reached through in-link.csv too: the link itself is never deleted.)
  assert.equal(await names(source()), ["c.tmp", "in-link.csv", "out-link.csv", "sub"]);
  assert.equal(await names(join(source(), "sub")), []);
  assert.is(await readFile(outside, "utf8"), "outside");
  const log = await readFile(join(device.root, "state", "deleted.log"), "utf8");
  assert.match(log, /"key":"out\/a.csv"/);
  assert.match(log, /"key":"out\/sub\/b.csv"/);
});

test("deleteAfterSeconds keeps a confirmed file for its delay, then deletes it", async () => {
  const bucket = await newBucket("retention-delay");
  await configure(bucket, { retention: { deleteAfterUpload: true, deleteAfterSeconds: 3 } });
  await writeTree(source(), { "a.csv": "a" });
  device.start("--interval", "600");
  await eventually("the upload", async () =>
    (await listKeys(bucket)).has("out/a.csv") ? true : undefined,
  );
  assert.equal(await names(source()), ["a.csv"], "kept during its delay");
  await eventually(
    "the deletion",
    async () => ((await names(source())).length === 0 ? true : undefined),
    20_000,
  );
});

test("a cap: 300 MB written into a 100 MB cap never holds more than the cap and one file; the bucket has every file", async () => {
  const bucket = await newBucket("retention-cap");
  const FILE = 10 * 1024 * 1024;
  const CAP = 100 * 1024 * 1024;
  await configure(bucket, { exclude: [".*"], retention: { maxBytes: CAP } });
  await mkdir(source(), { recursive: true });
  device.start("--interval", "600");
  const written = new Map<string, string>();
  let most = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      most = Math.max(most, await folderBytes(source()));
      await new Promise(resolve => setTimeout(resolve, 20));
    }
  })();
  for (let i = 0; i < 30; i++) {
    const data = randomBytes(FILE);
    const name = `f${String(i).padStart(2, "0")}.bin`;
    written.set(name, md5(data));
    // Written under a temporary name and renamed, as a workload should for retention.
    await writeFile(join(source(), `.${name}.part`), data);
    await rename(join(source(), `.${name}.part`), join(source(), name));
    await new Promise(resolve => setTimeout(resolve, 700));
  }
  await eventually(
    "every file in the bucket",
    async () => ((await listKeys(bucket)).size >= 30 ? true : undefined),
    60_000,
  );
  await eventually("the folder under its cap", async () =>
    (await folderBytes(source())) <= CAP ? true : undefined,
  );
  polling = false;
  await poll;
  assert.ok(most <= CAP + FILE, `the folder held ${most} bytes, over ${CAP} + one file`);
  process.stdout.write(
    `\n  retention: the folder peaked at ${(most / 2 ** 20).toFixed(1)} MiB (cap 100 MiB, files of 10 MiB)\n`,
  );
  const left = await names(source());
  assert.ok(left.length >= 9 && left.length <= 10, `kept the newest: ${left}`);
  assert.equal(left, [...written.keys()].slice(-left.length), "the oldest went first");
  const objects = await listKeys(bucket);
  for (const [name, sum] of written) {
    const object = objects.get(`out/${name}`);
    assert.ok(object, name);
    // Deleted files' objects are byte-exact (read back whole: multipart ETags are not MD5s).
    if (!left.includes(name)) assert.is(md5(await getObject(bucket, `out/${name}`)), sum, name);
  }
});

test("with the bucket unreachable nothing is deleted, and the cap shows as disk pressure", async () => {
  const bucket = await newBucket("retention-down");
  const port = Number(new URL(testEnv.s3.endpoint).port);
  proxy = await startTcpProxy(port);
  const endpoint = `http://127.0.0.1:${proxy.port}`;
  await configure(
    bucket,
    { retention: { maxBytes: 5000 } },
    { storage: storageFor(bucket, { endpoint }) },
  );
  await writeTree(source(), { "a.bin": randomBytes(4000) });
  const textfile = join(device.root, "metrics.prom");
  const running = device.start("--interval", "1", "--metrics-textfile", textfile);
  await eventually("the upload", async () =>
    (await listKeys(bucket)).has("out/a.bin") ? true : undefined,
  );
  await proxy.cut();
  await writeTree(source(), { "b.bin": randomBytes(4000), "c.bin": randomBytes(4000) });
  await eventually("disk pressure in the metrics", async () =>
    /^flotta_agent_disk_pressure 1$/m.test(await readFile(textfile, "utf8").catch(() => ""))
      ? true
      : undefined,
  );
  await new Promise(resolve => setTimeout(resolve, 3000));
  assert.equal(await names(source()), ["a.bin", "b.bin", "c.bin"], "nothing deleted while down");
  assert.match(running.logs(), /over its cap of 5000: the bucket cannot be reached/);
  await proxy.restore();
  // The passes back off while the bucket is down (up to 32 s apart by then): a longer wait.
  await eventually(
    "the oldest deleted once the bucket confirms",
    async () => ((await names(source())).join() === "c.bin" ? true : undefined),
    90_000,
  );
  await eventually("pressure over", async () =>
    /^flotta_agent_disk_pressure 0$/m.test(await readFile(textfile, "utf8").catch(() => ""))
      ? true
      : undefined,
  );
});

test.run();

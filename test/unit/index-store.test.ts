import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emptyIndex, IndexStore } from "../../agent/sync/index-store";

const entry = {
  workload: "w",
  size: 1,
  mtimeNs: "1",
  ctimeNs: "1",
  ino: "1",
  md5: "m",
  sentAt: "s",
};
const destination = { endpoint: "http://127.0.0.1:7070", bucket: "b1" };
let dir = "";
test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "index-"));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("no index: missing, and empty", async () => {
  const loaded = await new IndexStore(dir).load(destination);
  assert.is(loaded.state, "missing");
  assert.equal(loaded.index.files, {});
});

test("saved index loads back, mode 0600, no temp files left", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  index.files["t/a"] = entry;
  index.pendingUploads["t/big"] = "upload-1";
  await store.save(index);
  const loaded = await store.load(destination);
  assert.is(loaded.state, "found");
  assert.equal(loaded.index, index);
  assert.is((await stat(store.pathOf(destination))).mode & 0o777, 0o600);
  assert.equal(await readdir(dir), [store.pathOf(destination).split("/").pop()]);
});

test("each destination has its own index", async () => {
  const store = new IndexStore(dir);
  await store.save(emptyIndex(destination));
  assert.is((await store.load({ ...destination, bucket: "b2" })).state, "missing");
  assert.is((await store.load({ ...destination, endpoint: "https://other" })).state, "missing");
});

test("a torn index is set aside and the destination starts afresh", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  index.files["t/a"] = entry;
  await store.save(index);
  const path = store.pathOf(destination);
  const full = await readFile(path, "utf8");
  await writeFile(path, full.slice(0, full.length / 2));
  const loaded = await store.load(destination);
  assert.is(loaded.state, "corrupt");
  assert.equal(loaded.index.files, {});
  if (loaded.state === "corrupt")
    assert.is(await readFile(loaded.setAsideAs, "utf8"), full.slice(0, full.length / 2));
});

test("an index for another destination in the same file is not trusted", async () => {
  const store = new IndexStore(dir);
  await writeFile(
    store.pathOf(destination),
    JSON.stringify(emptyIndex({ ...destination, bucket: "other" })),
  );
  assert.is((await store.load(destination)).state, "corrupt");
});

test.run();

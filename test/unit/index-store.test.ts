import { test } from "uvu";
import * as assert from "uvu/assert";
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  emptyIndex,
  FileIndex,
  IndexStore,
  type DestinationIndex,
  type IndexEntry,
} from "../../agent/sync/index-store";

const entry = (n: number, workload = "w"): IndexEntry => ({
  workload,
  size: n,
  mtimeNs: n.toString(36),
  ctimeNs: "1",
  ino: "2",
  md5: "0123456789abcdef0123456789abcdef",
  sentAt: "2026-11-28T12:00:00.000Z",
});
const destination = { endpoint: "http://127.0.0.1:7070", bucket: "b1" };
let dir = "";
test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "index-"));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

const filesOf = (index: DestinationIndex) => Object.fromEntries(index.files.entries());
const sizeOf = async (path: string) => (await stat(path).catch(() => ({ size: 0 }))).size;

test("no index: missing, and empty", async () => {
  const loaded = await new IndexStore(dir).load(destination);
  assert.is(loaded.state, "missing");
  assert.is(loaded.index.files.size, 0);
});

test("entries keep every field through packing", async () => {
  const index = emptyIndex(destination);
  const multipart: IndexEntry = {
    ...entry(7),
    md5: undefined,
    etag: "9b2cf535f27731c974343645a3985328-3",
    partSize: 8 << 20,
  };
  delete multipart.md5;
  index.files.set("t/a", entry(1));
  index.files.set("t/big", multipart);
  assert.equal(index.files.get("t/a"), entry(1));
  assert.equal(index.files.get("t/big"), multipart);
  assert.ok(index.files.hasStat("t/a", entry(1)));
  assert.not.ok(index.files.hasStat("t/a", { ...entry(1), ctimeNs: "9" }));
});

test("saved index loads back, mode 0600, no temp files left", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  index.files.set("t/a", entry(1));
  index.files.set('t/odd\tname\n"é', entry(2, "v"));
  const pending = {
    uploadId: "upload-1",
    startedAt: "2026-11-28T12:00:00.000Z",
    size: 9,
    mtimeNs: "a",
    ino: "b",
    partSize: 5,
  };
  index.pendingUploads["t/big"] = pending;
  index.workloads.w = { lastSyncTime: "2026-11-28T12:00:00Z" };
  await store.save(index);
  const loaded = await store.load(destination);
  assert.is(loaded.state, "found");
  assert.equal(filesOf(loaded.index), filesOf(index));
  assert.equal(loaded.index.pendingUploads, { "t/big": pending });
  assert.equal(loaded.index.workloads, index.workloads);
  assert.equal(
    [...loaded.index.files.workloadTotals()],
    [
      ["w", { files: 1, bytes: 1 }],
      ["v", { files: 1, bytes: 2 }],
    ],
  );
  assert.is((await stat(store.pathOf(destination))).mode & 0o777, 0o600);
  assert.equal(await readdir(dir), [store.pathOf(destination).split("/").pop()]);
});

test("a save after k changes appends O(k) bytes to the journal; the snapshot is not rewritten", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  for (let i = 0; i < 10_000; i++) index.files.set(`t/d${i % 100}/file-${i}.bin`, entry(i));
  await store.save(index);
  const snapshot = store.pathOf(destination);
  const snapshotBytes = await sizeOf(snapshot);
  const before = (await stat(snapshot)).mtimeMs;
  for (let i = 0; i < 10; i++) index.files.set(`t/d${i}/file-${i}.bin`, entry(i + 1));
  index.files.delete("t/d50/file-50.bin");
  await store.save(index);
  const journal = store.journalPath(destination, index.persisted.generation);
  const written = await sizeOf(journal);
  assert.ok(snapshotBytes > 500_000, `snapshot ${snapshotBytes} bytes`);
  assert.ok(written > 0 && written < 2_000, `journal ${written} bytes for 11 changes`);
  assert.is((await stat(snapshot)).mtimeMs, before, "the snapshot was not rewritten");
  await store.save(index);
  assert.is(await sizeOf(journal), written, "a save with no change writes nothing");
  const loaded = await store.load(destination);
  assert.equal(filesOf(loaded.index), filesOf(index));
  assert.is(loaded.index.files.get("t/d3/file-3.bin")?.size, 4);
  assert.not.ok(loaded.index.files.has("t/d50/file-50.bin"));
});

test("a change made while a save is writing is saved by the next save, not lost", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  index.files.set("t/first", entry(1));
  await store.save(index);
  for (let i = 0; i < 200; i++) {
    const saving = store.save(index);
    // Land the change at a different point of the save each time (before, during, after I/O).
    for (let n = 0; n < i % 7; n++) await new Promise(resolve => setImmediate(resolve));
    index.files.set(`t/during-${i}`, entry(i));
    await saving;
  }
  await store.save(index);
  const loaded = await store.load(destination);
  assert.is(loaded.index.files.size, 201);
  assert.equal(filesOf(loaded.index), filesOf(index));
});

test("the journal survives a torn last record: earlier records stand, the tail is cut", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  index.files.set("t/a", entry(1));
  await store.save(index); // snapshot
  index.files.set("t/b", entry(2));
  await store.save(index); // journal: b
  const journal = store.journalPath(destination, index.persisted.generation);
  const good = await readFile(journal);
  // What a power cut in the middle of the next append leaves: part of a record, no newline.
  index.files.set("t/c", entry(3));
  index.files.changes.clear();
  await appendFile(journal, good.subarray(0, good.length - 7));
  const loaded = await store.load(destination);
  assert.is(loaded.state, "found");
  if (loaded.state === "found") assert.is(loaded.tornRecords, 1);
  assert.equal([...loaded.index.files.keys()].sort(), ["t/a", "t/b"]);
  assert.equal(await readFile(journal), good, "the torn tail was cut off");
  // Appends go on cleanly after the cut.
  loaded.index.files.set("t/d", entry(4));
  await store.save(loaded.index);
  const again = await store.load(destination);
  assert.equal([...again.index.files.keys()].sort(), ["t/a", "t/b", "t/d"]);
});

test("a record whose bytes were damaged (CRC) ends the replay there", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  await store.save(index);
  index.files.set("t/a", entry(1));
  await store.save(index);
  index.files.set("t/b", entry(2));
  await store.save(index);
  const journal = store.journalPath(destination, index.persisted.generation);
  const text = await readFile(journal, "utf8");
  await writeFile(journal, text.replace('"t/b"', '"t/x"'));
  const loaded = await store.load(destination);
  assert.equal([...loaded.index.files.keys()], ["t/a"]);
});

test("compaction: once the journal outgrows the snapshot, a new snapshot and an empty journal", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  index.files.set("t/a", entry(1));
  await store.save(index);
  const generation = index.persisted.generation;
  for (let round = 0; round < 8; round++) {
    for (let i = 0; i < 10_000; i++) index.files.set(`t/file-${i}`, entry(round * 10 + 1));
    await store.save(index);
  }
  assert.ok(index.persisted.generation > generation, "a compaction happened");
  const names = await readdir(dir);
  assert.equal(
    names.filter(n => n.endsWith(".log")).length <= 1,
    true,
    `stale journals left: ${names}`,
  );
  const loaded = await store.load(destination);
  assert.equal(filesOf(loaded.index), filesOf(index));
});

test("a snapshot larger than one read (4 MiB) loads whole, records split across reads", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  for (let i = 0; i < 80_000; i++)
    index.files.set(`t/folder-${i % 300}/a-longer-file-name-${i}.bin`, entry(i));
  await store.save(index);
  assert.ok((await sizeOf(store.pathOf(destination))) > (3 * (4 << 20)) / 2);
  const loaded = await store.load(destination);
  assert.is(loaded.state, "found");
  assert.equal(filesOf(loaded.index), filesOf(index));
  assert.equal((await store.all()).length, 1);
});

test("each destination has its own index", async () => {
  const store = new IndexStore(dir);
  await store.save(emptyIndex(destination));
  assert.is((await store.load({ ...destination, bucket: "b2" })).state, "missing");
  assert.is((await store.load({ ...destination, endpoint: "https://other" })).state, "missing");
});

test("a torn snapshot is set aside and the destination starts afresh", async () => {
  const store = new IndexStore(dir);
  const index = emptyIndex(destination);
  index.files.set("t/a", entry(1));
  await store.save(index);
  const path = store.pathOf(destination);
  const full = await readFile(path, "utf8");
  await writeFile(path, full.slice(0, full.length / 2));
  const loaded = await store.load(destination);
  assert.is(loaded.state, "corrupt");
  assert.is(loaded.index.files.size, 0);
  if (loaded.state === "corrupt")
    assert.is(await readFile(loaded.setAsideAs, "utf8"), full.slice(0, full.length / 2));
});

test("a snapshot for another destination in its file is not trusted", async () => {
  const other = new IndexStore(join(dir, "other"));
  const index = emptyIndex({ ...destination, bucket: "other" });
  await other.save(index);
  const store = new IndexStore(dir);
  await writeFile(store.pathOf(destination), await readFile(other.pathOf(index)));
  assert.is((await store.load(destination)).state, "corrupt");
});

test("a version 1 index is read, then replaced by a snapshot", async () => {
  const store = new IndexStore(dir);
  const legacy = store.pathOf(destination).replace(/\.snap$/, ".json");
  const v1 = {
    version: 1,
    ...destination,
    files: {
      "t/a": { ...entry(1), mtimeNs: "1764331200123456789", ctimeNs: "36", ino: "1000" },
    },
    pendingUploads: { "t/big": "upload-9" },
    listedPrefixes: ["t/"],
    workloads: { w: { lastSyncTime: "2026-11-28T12:00:00Z" } },
  };
  await writeFile(legacy, JSON.stringify(v1));
  const loaded = await store.load(destination);
  assert.is(loaded.state, "found");
  const a = loaded.index.files.get("t/a")!;
  assert.equal(
    [a.mtimeNs, a.ctimeNs, a.ino],
    [1764331200123456789n.toString(36), "10", (1000).toString(36)],
  );
  assert.equal(loaded.index.listedPrefixes, ["t/"]);
  // An upload id alone (no file stamps) is kept to be aborted, never resumed.
  assert.equal(loaded.index.pendingUploads, { "t/big": { uploadId: "upload-9", startedAt: "" } });
  await store.save(loaded.index);
  assert.equal(await readdir(dir), [store.pathOf(destination).split("/").pop()]);
  assert.equal(filesOf((await store.load(destination)).index), filesOf(loaded.index));
});

test("an entry keeps the object's size and ETag when they are not the file's (compressed)", () => {
  const files = new FileIndex();
  const entry = {
    workload: "cam",
    size: 1000,
    mtimeNs: "a",
    ctimeNs: "b",
    ino: "c",
    md5: "0123456789abcdef0123456789abcdef",
    stored: { size: 321, etag: "fedcba9876543210fedcba9876543210-2" },
    sentAt: "2026-12-06T10:00:00.000Z",
  };
  files.set("out/a.csv.gz", entry);
  assert.equal(files.get("out/a.csv.gz"), entry);
  const plain = { ...entry, stored: undefined };
  files.set("out/b.csv", plain);
  assert.equal(files.get("out/b.csv")?.stored, undefined);
  assert.is(files.get("out/b.csv")?.md5, entry.md5);
});

test.run();

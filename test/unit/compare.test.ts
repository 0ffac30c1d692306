import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  bareEtag,
  decide,
  guessPartSize,
  multipartPartCount,
  sameContent,
} from "../../agent/sync/compare";
import type { IndexEntry } from "../../agent/sync/index-store";
import type { LocalFile } from "../../agent/sync/walk";

const file: LocalFile = {
  relativePath: "a.txt",
  path: Buffer.from("/v/w/s/a.txt"),
  root: Buffer.from("/v/w/s"),
  size: 10,
  mtimeNs: "1000",
  ctimeNs: "1000",
  ino: "7",
};
const entry: IndexEntry = {
  workload: "w",
  size: 10,
  mtimeNs: "1000",
  ctimeNs: "1000",
  ino: "7",
  md5: "abc",
  sentAt: "t",
};

test("a file the index does not know is sent", () => {
  assert.equal(decide(file, undefined), { action: "upload" });
});

test("a file the index knows with the same stat is skipped", () => {
  assert.equal(decide(file, entry), { action: "skip" });
});

test("a file of another size is sent without hashing", () => {
  assert.equal(decide({ ...file, size: 11 }, entry), { action: "upload" });
});

test("a touched or same-size rewritten file is hashed, not sent blindly", () => {
  assert.equal(decide({ ...file, mtimeNs: "2000", ctimeNs: "2000" }, entry), {
    action: "verify-local",
    entry,
  });
  assert.equal(decide({ ...file, ino: "8" }, entry), { action: "verify-local", entry });
});

test("content is compared by MD5, else by the multipart ETag the entry kept", () => {
  const hashes = { md5: "abc", multipartEtag: "def-3" };
  assert.ok(sameContent({ md5: "abc" }, hashes));
  assert.not.ok(sameContent({ md5: "xyz" }, hashes));
  assert.ok(sameContent({ etag: "def-3", partSize: 8 }, hashes));
  assert.not.ok(sameContent({ etag: "def-4", partSize: 8 }, hashes));
  assert.not.ok(sameContent({}, hashes), "nothing recorded: never assume unchanged");
});

test("an unknown file with an object of the same size is checked against the object", () => {
  const remote = { size: 10, etag: "0123" };
  assert.equal(decide(file, undefined, remote), { action: "verify-remote", remote });
  assert.equal(decide(file, undefined, { size: 9, etag: "0123" }), { action: "upload" });
});

test("ETags: quotes stripped, multipart part count read", () => {
  assert.is(bareEtag('"d41d8cd98f00b204e9800998ecf8427e"'), "d41d8cd98f00b204e9800998ecf8427e");
  assert.is(multipartPartCount('"abc-4"'), 4);
  assert.is(multipartPartCount("d41d8cd98f00b204e9800998ecf8427e"), 0);
});

test("part size is guessed from size and part count", () => {
  const MiB = 1024 * 1024;
  assert.is(guessPartSize(20 * MiB, 4), 5 * MiB);
  assert.is(guessPartSize(20 * MiB + 1, 3), 7 * MiB);
  assert.is(guessPartSize(100 * MiB, 1000), undefined);
});

test.run();

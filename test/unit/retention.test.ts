import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  existsSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unlinkIfUnchanged } from "../../agent/sync/retention";
import { toLocalFile } from "../../agent/sync/walk";

let dir = "";
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), "retention-"));
  mkdirSync(join(dir, "src", "sub"), { recursive: true });
});
test.after.each(() => rmSync(dir, { recursive: true, force: true }));

const root = () => Buffer.from(join(dir, "src"));
const seen = (rel: string) => {
  const path = join(dir, "src", rel);
  return toLocalFile(Buffer.from(path), root(), rel, lstatSync(path, { bigint: true }));
};

test("deletes the file the index confirmed, as it was", async () => {
  writeFileSync(join(dir, "src", "sub", "a.bin"), "a");
  assert.ok(await unlinkIfUnchanged(seen("sub/a.bin")));
  assert.not.ok(existsSync(join(dir, "src", "sub", "a.bin")));
});

test("keeps a file that changed, or was replaced, since it was confirmed", async () => {
  const path = join(dir, "src", "sub", "a.bin");
  writeFileSync(path, "a");
  const confirmed = seen("sub/a.bin");
  utimesSync(path, new Date(2000, 1, 1), new Date(2000, 1, 1)); // touched: mtime and ctime differ
  assert.not.ok(await unlinkIfUnchanged(confirmed));
  const again = seen("sub/a.bin");
  writeFileSync(join(dir, "new.bin"), "b");
  renameSync(join(dir, "new.bin"), path); // another file (inode) under the name
  assert.not.ok(await unlinkIfUnchanged(again));
  assert.ok(existsSync(path));
});

test("never deletes through a folder swapped for a link, nor a link put in the file's place", async () => {
  const path = join(dir, "src", "sub", "a.bin");
  writeFileSync(path, "a");
  const confirmed = seen("sub/a.bin");
  // The folder moves outside the source and a link takes its place: the same file (same stamps)
  // is now reached outside the source.
  renameSync(join(dir, "src", "sub"), join(dir, "outside"));
  symlinkSync(join(dir, "outside"), join(dir, "src", "sub"));
  assert.not.ok(await unlinkIfUnchanged(confirmed));
  assert.ok(existsSync(join(dir, "outside", "a.bin")), "the file outside stays");
  rmSync(join(dir, "src", "sub"));
  mkdirSync(join(dir, "src", "sub"));
  writeFileSync(join(dir, "target.bin"), "t");
  symlinkSync(join(dir, "target.bin"), path);
  const link = toLocalFile(
    Buffer.from(path),
    root(),
    "sub/a.bin",
    lstatSync(path, { bigint: true }),
  );
  assert.not.ok(await unlinkIfUnchanged(link), "a link is not a regular file");
  assert.ok(existsSync(join(dir, "target.bin")));
  assert.ok(lstatSync(path).isSymbolicLink());
});

test("a file gone meanwhile is not an error", async () => {
  writeFileSync(join(dir, "src", "a.bin"), "a");
  const confirmed = seen("a.bin");
  rmSync(join(dir, "src", "a.bin"));
  assert.not.ok(await unlinkIfUnchanged(confirmed));
});

test.run();

import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { walk } from "../../agent/sync/walk";

let dir = "";
test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "walk-"));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("lists nested files, empty files and odd names, sorted, with stats", async () => {
  const root = join(dir, "src");
  await mkdir(join(root, "a/b"), { recursive: true });
  await mkdir(join(root, "empty-dir"));
  await writeFile(join(root, "a/b/deep.txt"), "deep");
  await writeFile(join(root, "zero"), "");
  await writeFile(join(root, "with space #?%+.txt"), "x");
  await writeFile(join(root, "line\nbreak"), "y");
  const { files, problems } = await walk(root);
  assert.equal(problems, []);
  assert.equal(
    files.map(f => f.relativePath),
    ["a/b/deep.txt", "line\nbreak", "with space #?%+.txt", "zero"],
  );
  const deep = files[0];
  assert.is(deep.size, 4);
  assert.match(deep.mtimeNs, /^\d+$/);
  assert.is(files[3].size, 0);
});

test("a missing source directory is no error and no files", async () => {
  assert.equal(await walk(join(dir, "not-yet")), { files: [], problems: [] });
});

test("symlinks: inside the tree followed to files, outside never, directories never", async () => {
  const root = join(dir, "src");
  await mkdir(join(root, "sub"), { recursive: true });
  await writeFile(join(dir, "secret"), "outside the tree");
  await writeFile(join(root, "sub/real.txt"), "inside");
  await symlink(join(dir, "secret"), join(root, "escape"));
  await symlink("../..", join(root, "sub/up"));
  await symlink("sub/real.txt", join(root, "alias.txt"));
  await symlink("sub", join(root, "loop"));
  const { files } = await walk(root);
  assert.equal(
    files.map(f => f.relativePath),
    ["alias.txt", "sub/real.txt"],
  );
});

test("a source that is itself a symlink to a directory is walked", async () => {
  await mkdir(join(dir, "real"));
  await writeFile(join(dir, "real/f"), "f");
  await symlink(join(dir, "real"), join(dir, "link"));
  const { files } = await walk(join(dir, "link"));
  assert.equal(
    files.map(f => f.relativePath),
    ["f"],
  );
});

test.run();

import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keyToName, nameToKey, walk } from "../../agent/sync/walk";
import { execFileSync } from "node:child_process";

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
  const { files, problems } = await walk(dir, "src");
  assert.equal(problems, []);
  assert.equal(
    files.map(f => f.relativePath),
    ["a/b/deep.txt", "line\nbreak", "with space #?%+.txt", "zero"],
  );
  const deep = files[0];
  assert.is(deep.size, 4);
  assert.match(deep.mtimeNs, /^[0-9a-z]+$/, "nanoseconds in base 36");
  assert.is(files[3].size, 0);
});

test("a missing source directory is no error and no files", async () => {
  assert.equal(await walk(dir, "not-yet"), { files: [], problems: [], skipped: [] });
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
  const { files } = await walk(dir, "src");
  assert.equal(
    files.map(f => f.relativePath),
    ["alias.txt", "sub/real.txt"],
  );
});

test("a source folder that is a symlink, or reached through one, is refused and not walked", async () => {
  await mkdir(join(dir, "real/inner"), { recursive: true });
  await writeFile(join(dir, "real/inner/f"), "f");
  await symlink(join(dir, "real"), join(dir, "link"));
  for (const source of ["link", "link/inner"]) {
    const { files, problems } = await walk(dir, source);
    assert.equal(files, [], source);
    assert.match(problems[0]?.error ?? "", /symlink: not followed/, source);
  }
});

test("FIFOs, sockets and symlink loops are skipped and said so; the walk does not block", async () => {
  const root = join(dir, "src");
  await mkdir(root);
  await writeFile(join(root, "ok.txt"), "ok");
  execFileSync("mkfifo", [join(root, "pipe")]);
  await symlink("self", join(root, "self"));
  const { files, skipped } = await walk(dir, "src");
  assert.equal(
    files.map(f => f.relativePath),
    ["ok.txt"],
  );
  assert.equal(skipped.map(s => s.path).sort(), ["pipe", "self"]);
});

test("a name that is not UTF-8 gets a key with its odd bytes as %XX", async () => {
  const root = join(dir, "src");
  await mkdir(root);
  await writeFile(
    Buffer.concat([Buffer.from(join(root, "caf")), Buffer.from([0xe9]), Buffer.from("%.txt")]),
    "x",
  );
  const { files } = await walk(dir, "src");
  assert.equal(
    files.map(f => f.relativePath),
    ["caf%E9%25.txt"],
  );
  assert.is(nameToKey(Buffer.from("ünï 日本.txt")), "ünï 日本.txt");
});

test("keys are one-to-one: a name and the name of its escape never meet, and decode back", () => {
  const names = [
    Buffer.from("caf\xe9.txt", "latin1"),
    Buffer.from("caf%E9.txt"),
    Buffer.from("caf%e9.txt"),
    Buffer.from("caf%25E9.txt"),
    Buffer.from("100%.txt"),
    Buffer.from("%%41"),
    Buffer.from("a%2g"),
    Buffer.from("\xff%41", "latin1"),
    Buffer.from("plain.csv"),
  ];
  const keys = names.map(n => nameToKey(n));
  assert.is(new Set(keys).size, names.length, keys.join(" "));
  names.forEach((n, i) => assert.ok(keyToName(keys[i]).equals(n), keys[i]));
  // Ordinary names keep their keys.
  assert.is(nameToKey(Buffer.from("100%.txt")), "100%.txt");
  assert.is(nameToKey(Buffer.from("caf%E9.txt")), "caf%25E9.txt");
  // Random byte names: no two keys alike, each decodes to its name.
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const seen = new Map<string, string>();
  for (let i = 0; i < 20_000; i++) {
    const name = Buffer.from(
      Array.from(
        { length: 1 + rand(6) },
        () => [0x25, 0x41, 0x45, 0x39, 0xe9, 0xc3, 0xa9, 0x2e][rand(8)],
      ),
    );
    const key = nameToKey(name);
    assert.ok(keyToName(key).equals(name), key);
    const before = seen.get(key);
    assert.ok(before === undefined || before === name.toString("hex"), key);
    seen.set(key, name.toString("hex"));
  }
});

test.run();

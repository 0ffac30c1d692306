import { test } from "uvu";
import * as assert from "uvu/assert";
import { globProblem } from "../../agent/config/device-config";
import { EVERYTHING, globToRegExp, pathFilter, stillQuieting } from "../../agent/sync/filter";

const wanted = (path: { include?: string[]; exclude?: string[] }, files: string[]) =>
  files.filter(f => pathFilter(path).wanted(f));

const FILES = [
  "a.csv",
  "b.tmp",
  ".~lock.a.csv#",
  "sub/c.csv",
  "sub/d.tmp",
  "cache/e.csv",
  "deep/cache/f.csv",
  "notes.txt",
];

test("no include, no exclude: every file, and the shared filter", () => {
  assert.is(pathFilter({}), EVERYTHING);
  assert.equal(wanted({}, FILES), FILES);
});

test("a glob without / matches names at any depth; one with / is anchored at the source", () => {
  assert.equal(wanted({ include: ["*.csv"] }, FILES), [
    "a.csv",
    "sub/c.csv",
    "cache/e.csv",
    "deep/cache/f.csv",
  ]);
  assert.equal(wanted({ include: ["sub/*.csv"] }, FILES), ["sub/c.csv"]);
  assert.equal(wanted({ include: ["**/cache/*.csv"] }, FILES), ["cache/e.csv", "deep/cache/f.csv"]);
});

test("exclude wins over include and leaves out whole folders", () => {
  assert.equal(wanted({ exclude: ["*.tmp", ".~*", "cache"] }, FILES), [
    "a.csv",
    "sub/c.csv",
    "notes.txt",
  ]);
  assert.equal(wanted({ include: ["*.csv"], exclude: ["cache/**"] }, FILES), [
    "a.csv",
    "sub/c.csv",
    "deep/cache/f.csv",
  ]);
});

test("* and ? stay within a folder, [set] and [!set] match one character", () => {
  assert.ok(globToRegExp("a/*.csv").test("a/x.csv"));
  assert.not.ok(globToRegExp("a/*.csv").test("a/b/x.csv"));
  assert.ok(globToRegExp("a/**/x.csv").test("a/x.csv"));
  assert.ok(globToRegExp("a/**/x.csv").test("a/b/c/x.csv"));
  assert.ok(globToRegExp("img-?.png").test("img-1.png"));
  assert.not.ok(globToRegExp("img-?.png").test("img-10.png"));
  assert.ok(globToRegExp("[ab].txt").test("b.txt"));
  assert.not.ok(globToRegExp("[!ab].txt").test("a.txt"));
  assert.ok(globToRegExp("[!ab].txt").test("c.txt"));
  // Regular-expression characters in a glob are literal.
  assert.ok(globToRegExp("a+b(1).csv").test("a+b(1).csv"));
  assert.not.ok(globToRegExp("a.csv").test("abcsv"));
});

test("globs the schema refuses, each with a reason", () => {
  assert.is(globProblem("*.csv"), undefined);
  assert.match(globProblem("")!, /empty/);
  assert.match(globProblem("/abs/*.csv")!, /relative/);
  assert.match(globProblem("a\\b")!, /separator/);
  assert.match(globProblem("[abc")!, /unclosed/);
});

test("quiet period: a file changed within it waits; 0 is off", () => {
  const now = 1_800_000_000_000;
  const stamp = (ms: number) => (BigInt(ms) * 1_000_000n).toString(36);
  assert.ok(stillQuieting(stamp(now - 1_000), 5_000, now));
  assert.not.ok(stillQuieting(stamp(now - 6_000), 5_000, now));
  assert.not.ok(stillQuieting(stamp(now), 0, now));
  assert.is(pathFilter({ quietSeconds: 30 }).quietMs, 30_000);
});

test.run();

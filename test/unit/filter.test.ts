import { test } from "uvu";
import * as assert from "uvu/assert";
import { globProblem } from "../../agent/config/device-config";
import { EVERYTHING, pathFilter, pathGlob, stillQuieting } from "../../agent/sync/filter";

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
  assert.ok(pathGlob("a/*.csv").matches("a/x.csv"));
  assert.not.ok(pathGlob("a/*.csv").matches("a/b/x.csv"));
  assert.ok(pathGlob("a/**/x.csv").matches("a/x.csv"));
  assert.ok(pathGlob("a/**/x.csv").matches("a/b/c/x.csv"));
  assert.ok(pathGlob("img-?.png").matches("img-1.png"));
  assert.not.ok(pathGlob("img-?.png").matches("img-10.png"));
  assert.ok(pathGlob("[ab].txt").matches("b.txt"));
  assert.not.ok(pathGlob("[!ab].txt").matches("a.txt"));
  assert.ok(pathGlob("[!ab].txt").matches("c.txt"));
  // Regular-expression characters in a glob are literal.
  assert.ok(pathGlob("a+b(1).csv").matches("a+b(1).csv"));
  assert.not.ok(pathGlob("a.csv").matches("abcsv"));
});

test("globs the schema refuses, each with a reason", () => {
  assert.is(globProblem("*.csv"), undefined);
  assert.match(globProblem("")!, /empty/);
  assert.match(globProblem("/abs/*.csv")!, /relative/);
  assert.match(globProblem("a\\b")!, /separator/);
  assert.match(globProblem("[abc")!, /unclosed/);
  // Issue 19: sets a regular expression would refuse (and throw on, inside the pass).
  assert.match(globProblem("*.[z-a]")!, /range \[z-a\] whose end comes before its start/);
  assert.match(globProblem("[]")!, /empty/);
  assert.match(globProblem("a]")!, /without \[/);
  assert.match(globProblem("[a/b]")!, /\//);
  assert.match(globProblem("[[]")!, /inside/);
  assert.is(globProblem("[a-z0-9_]*.csv"), undefined);
});

test("a glob a backtracking matcher takes seconds over is answered right (its speed: agent-blast-radius)", () => {
  const glob = pathGlob("*_*_*_*_*.csv");
  const name = "a_".repeat(150) + "x.txt"; // 305 characters that do not match
  assert.not.ok(glob.matches(name));
  assert.ok(glob.matches("a_".repeat(150) + "x.csv"));
  assert.ok(pathFilter({ exclude: ["*_*_*_*_*_*_*_*"] }).wanted("a".repeat(1000)));
});

test("the automaton agrees with a regular expression on random globs and names", () => {
  let seed = 19;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const alphabet = ["a", "b", "/", ".", "*", "?", "**", "[ab]", "[!a]", "[a-c]"];
  const toRegExp = (glob: string) => {
    const anchored = glob.includes("/") ? glob : `**/${glob}`;
    let re = "";
    for (let i = 0; i < anchored.length; i++) {
      const c = anchored[i];
      if (c === "*" && anchored[i + 1] === "*") {
        const slash = anchored[i + 2] === "/";
        re += slash ? "(?:.*/)?" : ".*";
        i += slash ? 2 : 1;
      } else if (c === "*") re += "[^/]*";
      else if (c === "?") re += "[^/]";
      else if (c === "[") {
        const end = anchored.indexOf("]", i);
        const set = anchored.slice(i + 1, end);
        re += set.startsWith("!") ? `[^/${set.slice(1)}]` : `(?!/)[${set}]`;
        i = end;
      } else re += c === "." ? "\\." : c;
    }
    return new RegExp(`^${re}$`, "s");
  };
  for (let g = 0; g < 400; g++) {
    let glob = "";
    for (let n = 1 + rand(5); n > 0; n--) glob += alphabet[rand(alphabet.length)];
    if (glob.endsWith("/") || glob.startsWith("/") || glob.includes("//")) continue;
    const re = toRegExp(glob);
    const mine = pathGlob(glob);
    for (let p = 0; p < 40; p++) {
      let name = "";
      for (let n = 1 + rand(7); n > 0; n--) name += "ab/.c"[rand(5)];
      if (name.startsWith("/") || name.endsWith("/") || name.includes("//")) continue;
      assert.is(mine.matches(name), re.test(name), `${glob} on ${name}`);
    }
  }
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

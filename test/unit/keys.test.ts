import { test } from "uvu";
import * as assert from "uvu/assert";
import { normalizeTarget, objectKey, targetPrefix } from "../../agent/sync/keys";

test("key is <target>/<relative path>", () => {
  assert.is(objectKey("statistics", "cpu.json"), "statistics/cpu.json");
  assert.is(objectKey("statistics", "2026/11/25/cpu.json"), "statistics/2026/11/25/cpu.json");
});

test("target is normalized: trailing and doubled slashes, ./", () => {
  assert.is(normalizeTarget("a/b/"), "a/b");
  assert.is(normalizeTarget("./a//b"), "a/b");
  assert.is(objectKey("stats/", "x"), "stats/x");
  assert.is(targetPrefix("stats/"), "stats/");
  assert.is(targetPrefix("."), "");
});

test("odd file names map to the same characters in the key", () => {
  for (const name of [
    "with space.txt",
    "ünïcødé-日本.txt",
    "hash#1",
    "what?.txt",
    "100%.txt",
    "a+b.txt",
    "line\nbreak",
  ]) {
    assert.is(objectKey("t", name), `t/${name}`);
  }
});

test.run();

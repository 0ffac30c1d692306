import { test } from "uvu";
import * as assert from "uvu/assert";
import type { EdgeWorkload } from "../../capabilities/generated/edgeworkload-v1alpha1";
import {
  expandKeyPrefix,
  keyPrefixes,
  overlappingWorkloads,
  prefixesOverlap,
  SharedBuckets,
} from "../../capabilities/key-space";

const device = { namespace: "edge", name: "cam-1" };

test("keyPrefix templates: {namespace} and {device} are expanded, slashes normalized", () => {
  assert.equal(expandKeyPrefix(undefined, device), { prefix: "" });
  assert.equal(expandKeyPrefix("{namespace}/{device}", device), { prefix: "edge/cam-1" });
  assert.equal(expandKeyPrefix("/fleet//{device}/", device), { prefix: "fleet/cam-1" });
  assert.equal(expandKeyPrefix("site-a", device), { prefix: "site-a" });
});

test("keyPrefix templates that cannot give a prefix name the field", () => {
  for (const [template, why] of [
    ["{nope}/x", /unknown placeholder \{nope\}/],
    ["{device", /\{ or \}/],
    ["../{device}", /'\.\.'/],
  ] as const) {
    const r = expandKeyPrefix(template, device);
    assert.ok("problem" in r, template);
    if ("problem" in r) {
      assert.match(r.problem, /^spec\.storage\.keyPrefix: /);
      assert.match(r.problem, why);
    }
  }
});

test("prefixes overlap when keys under one can be keys under the other", () => {
  assert.ok(prefixesOverlap("a", "a"));
  assert.ok(prefixesOverlap("a", "a/b"));
  assert.ok(prefixesOverlap("a/b/", "a"));
  assert.ok(prefixesOverlap("", "a")); // no prefix covers the whole bucket
  assert.not.ok(prefixesOverlap("a", "ab"));
  assert.not.ok(prefixesOverlap("x/a", "y/a"));
  assert.equal(keyPrefixes("edge/cam-1", ["stats", "video/"]), [
    "edge/cam-1/stats",
    "edge/cam-1/video",
  ]);
});

const wl = (name: string, created: string, targets: string[]) =>
  ({
    metadata: { name, namespace: "edge", creationTimestamp: created },
    spec: { data: { paths: targets.map(target => ({ source: "s", target })) } },
  }) as unknown as EdgeWorkload;

test("on one device, a workload whose target overlaps an older workload's is refused", () => {
  const old = wl("old", "2026-01-01T00:00:00Z", ["stats"]);
  const nested = wl("nested", "2026-02-01T00:00:00Z", ["other", "stats/more"]);
  const apart = wl("apart", "2026-03-01T00:00:00Z", ["statistics"]);
  const refused = overlappingWorkloads([apart, nested, old]);
  assert.equal(
    refused.map(r => r.workload.metadata?.name),
    ["nested"],
  );
  assert.match(
    refused[0].problems[0],
    /^spec\.data\.paths\[1\]\.target: "stats\/more" overlaps the target "stats" of EdgeWorkload old/,
  );
  // Same age: the name decides, so every reconcile refuses the same one.
  const twin = wl("b-twin", "2026-01-01T00:00:00Z", ["stats"]);
  assert.equal(
    overlappingWorkloads([twin, old]).map(r => r.workload.metadata?.name),
    ["old"],
  );
});

test("shared buckets: collisions on both sides, and the devices to look at again", () => {
  const shared = new SharedBuckets();
  const a = { bucket: "http://s3/b", prefixes: ["stats"] };
  assert.equal(shared.update("edge/a", a), { sharing: [], collisions: [], affected: [] });
  const b = shared.update("edge/b", { bucket: "http://s3/b", prefixes: ["stats/x", "video"] });
  assert.equal(b.sharing, ["edge/a"]);
  assert.equal(b.collisions, [{ device: "edge/a", mine: "stats/x", theirs: "stats" }]);
  assert.equal(b.affected, ["edge/a"]); // a must now say it collides with b
  // a looks again: it sees b, and nothing new to tell b.
  const again = shared.update("edge/a", a);
  assert.equal(again.collisions, [{ device: "edge/b", mine: "stats", theirs: "stats/x" }]);
  assert.equal(again.affected, []);
  // Prefixed apart: still sharing, no collision; a is told.
  const apart = shared.update("edge/b", { bucket: "http://s3/b", prefixes: ["edge/b/stats"] });
  assert.equal([apart.sharing, apart.collisions, apart.affected], [["edge/a"], [], ["edge/a"]]);
  // Another bucket is not shared; b gone: a is told.
  assert.equal(
    shared.update("edge/c", { bucket: "http://s3/other", prefixes: ["stats"] }).sharing,
    [],
  );
  assert.equal(shared.update("edge/b", undefined).affected, ["edge/a"]);
});

test.run();

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

test("shared buckets: collisions on both sides, and the devices whose condition flips", () => {
  const shared = new SharedBuckets();
  const a = { bucket: "http://s3/b", prefixes: ["stats"] };
  const b = { bucket: "http://s3/b", prefixes: ["stats/x", "video"] };
  const alone = shared.update("edge/a", a);
  assert.equal([alone.sharing, alone.colliding, alone.affected], [false, 0, []]);
  const second = shared.update("edge/b", b);
  assert.equal([second.sharing, second.colliding], [true, 1]);
  assert.equal(second.collisions, [{ device: "edge/a", mine: "stats/x", theirs: "stats" }]);
  assert.equal(second.affected, ["edge/a"]); // a must now say it collides with b
  // a looks again: it sees b, and b already knows.
  const again = shared.update("edge/a", a);
  assert.equal(again.collisions, [{ device: "edge/b", mine: "stats", theirs: "stats/x" }]);
  assert.equal(again.affected, []);
  // b prefixed apart: still sharing, no collision; a is told (its condition flips).
  const apart = shared.update("edge/b", { bucket: "http://s3/b", prefixes: ["edge/b/stats"] });
  assert.equal([apart.sharing, apart.colliding, apart.affected], [true, 0, ["edge/a"]]);
  assert.equal(shared.update("edge/a", a).colliding, 0);
  // Another bucket is not shared; b gone: a is alone again and told.
  assert.is(
    shared.update("edge/c", { bucket: "http://s3/other", prefixes: ["stats"] }).sharing,
    false,
  );
  assert.equal(shared.update("edge/b", undefined).affected, ["edge/a"]);
  assert.is(shared.update("edge/a", a).sharing, false);
});

test("shared buckets at fleet scale: a device names the first colliders, and tells only flips", () => {
  const shared = new SharedBuckets();
  const space = { bucket: "http://s3/fleet", prefixes: ["t-0", "t-1"] };
  let affected = 0;
  for (let i = 0; i < 2000; i++)
    affected += shared.update(`fleet/d${String(i).padStart(4, "0")}`, space).affected.length;
  // Only the first device had a condition to flip (alone, not colliding): it is told by each
  // arrival until it has reconciled (the queue coalesces those); then nobody is.
  shared.update("fleet/d0000", space);
  const last = shared.update("fleet/d1999", space);
  assert.equal([last.colliding, last.affected.length], [1999, 0]);
  assert.equal(
    last.collisions.map(c => c.device),
    ["fleet/d0000", "fleet/d0001", "fleet/d0002", "fleet/d0003", "fleet/d0004"],
  );
  assert.ok(affected <= 2 * 2000, `${affected} requeues for 2000 arrivals`);
  // Nested prefixes are found both ways.
  const nested = shared.update("other/x", { bucket: "http://s3/fleet", prefixes: ["t-0/sub"] });
  assert.is(nested.colliding, 2000);
  const above = shared.update("other/y", { bucket: "http://s3/fleet", prefixes: ["t-1/a", "t"] });
  assert.is(above.colliding, 2000);
});

test.run();

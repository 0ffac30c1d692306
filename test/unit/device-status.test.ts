import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  deviceConditions,
  deviceEvents,
  moduleStatus,
  type Findings,
} from "../../capabilities/device-status";

const storage = {
  kind: "external" as const,
  endpoint: "http://s3:80",
  bucket: "shared",
  region: "r",
  accessKeyId: "a",
  secretAccessKey: "s",
  forcePathStyle: true,
};
const findings = (more: Partial<Findings> = {}): Findings => ({
  resolution: { storage },
  storage,
  lastGood: null,
  conflicts: [],
  invalid: [],
  keyPrefix: { prefix: "" },
  shared: { sharing: false, colliding: 0, collisions: [] },
  configSecret: "cam-data-upload",
  agent: { reporting: true, capped: false },
  ...more,
});
const byType = (f: Findings) => new Map(deviceConditions(f).map(c => [c.type, c]));

test("no key prefix and no shared bucket: neither condition", () => {
  const c = byType(findings());
  assert.equal([...c.keys()], ["Ready"]);
});

test("a key prefix in use, or the one kept while the template is bad", () => {
  const ok = byType(findings({ keyPrefix: { template: "{device}", prefix: "cam" } }));
  assert.equal(
    [ok.get("KeyPrefixValid")?.status, ok.get("KeyPrefixValid")?.message],
    ["True", 'Object keys start with "cam/"'],
  );
  const bad = byType(
    findings({
      keyPrefix: {
        template: "{x}",
        prefix: "old",
        problem: "spec.storage.keyPrefix: unknown placeholder {x}",
      },
    }),
  ).get("KeyPrefixValid")!;
  assert.equal([bad.status, bad.reason], ["False", "InvalidKeyPrefix"]);
  assert.match(bad.message, /unknown placeholder \{x\}\. The device keeps the key prefix "old\/"/);
});

test("a shared bucket: KeysCollide False when prefixes keep devices apart, True naming the others", () => {
  const apart = byType(findings({ shared: { sharing: true, colliding: 0, collisions: [] } }));
  assert.equal(
    [apart.get("KeysCollide")?.status, apart.get("KeysCollide")?.reason],
    ["False", "DistinctPrefixes"],
  );
  const collisions = Array.from({ length: 5 }, (_, i) => ({
    device: `edge/d${i}`,
    mine: "stats",
    theirs: "stats",
  }));
  const c = byType(findings({ shared: { sharing: true, colliding: 700, collisions } })).get(
    "KeysCollide",
  )!;
  assert.equal([c.status, c.reason], ["True", "SharedBucketOverlap"]);
  assert.match(c.message, /^This device and EdgeDevice edge\/d0, EdgeDevice edge\/d1/);
  // No count: a growing fleet must not change every device's message.
  assert.match(c.message, /edge\/d4 and other devices upload to this bucket/);
  assert.match(c.message, /Set spec\.storage\.keyPrefix/);
});

test("a Warning Event when keys start to collide, not again while they do", () => {
  const f = findings({
    shared: {
      sharing: true,
      colliding: 1,
      collisions: [{ device: "edge/b", mine: "s", theirs: "s" }],
    },
  });
  const now = moduleStatus(f, {}, 1, "2026-11-28T12:00:00Z");
  assert.equal(
    deviceEvents({}, now).map(e => [e.type, e.reason]),
    [
      ["Normal", "StorageChanged"],
      ["Warning", "SharedBucketOverlap"],
    ],
  );
  assert.equal(deviceEvents(now, now), []);
});

test("DiskPressure: present with a size cap; True while the agent reports the cap exceeded", () => {
  assert.not.ok(byType(findings()).has("DiskPressure"));
  const agent = { reporting: true, capped: true };
  const within = byType(findings({ agent })).get("DiskPressure");
  assert.equal([within?.status, within?.reason], ["False", "WithinCap"]);
  const over = byType(
    findings({ agent: { ...agent, diskPressure: "cam/data: 120 MiB over 100" } }),
  );
  assert.equal(
    [over.get("DiskPressure")?.status, over.get("DiskPressure")?.message],
    ["True", "cam/data: 120 MiB over 100"],
  );
  const silent = byType(findings({ agent: { ...agent, reporting: false } })).get("DiskPressure");
  assert.equal([silent?.status, silent?.reason], ["Unknown", "AgentNotReporting"]);
});

test("UploadStalled: present with a threshold; True with a Warning when a file waits too long", () => {
  assert.not.ok(byType(findings()).has("UploadStalled"));
  const agent = { reporting: true, capped: false, stallAfterSeconds: 60 };
  const flowing = byType(findings({ agent })).get("UploadStalled");
  assert.equal(
    [flowing?.status, flowing?.message],
    ["False", "No file has waited longer than 60 s"],
  );
  const now = "2026-12-06T00:00:00Z";
  const before = moduleStatus(findings({ agent }), {}, 1, now);
  const after = moduleStatus(
    findings({ agent: { ...agent, stalled: "oldest at 10:00" } }),
    before,
    1,
    now,
  );
  assert.equal(after.conditions.find(c => c.type === "UploadStalled")?.status, "True");
  assert.equal(
    deviceEvents(before, after).map(e => [e.type, e.reason]),
    [["Warning", "FilesWaiting"]],
  );
  assert.equal(deviceEvents(after, after), []);
});

test.run();

import { test } from "uvu";
import * as assert from "uvu/assert";
import { DeviceChanges } from "../../capabilities/device-changes";

const device = (generation: number, labels: Record<string, string> = {}, status?: object) => ({
  metadata: { uid: "u-1", generation, labels },
  status,
});

test("first sight, spec and label changes, deletion count; status changes do not", () => {
  const changes = new DeviceChanges();
  assert.ok(changes.changed(device(1)), "first sight");
  assert.not.ok(changes.changed(device(1, {}, { dataUpload: { filesSent: 3 } })), "status only");
  assert.ok(changes.changed(device(2)), "spec (generation)");
  assert.ok(changes.changed(device(2, { site: "north" })), "a label");
  assert.not.ok(changes.changed(device(2, { site: "north" })), "the same again");
  assert.ok(
    changes.changed({
      metadata: { ...device(2, { site: "north" }).metadata, deletionTimestamp: "now" },
    }),
    "deletion",
  );
  changes.forget(device(2));
  assert.ok(changes.changed(device(2, { site: "north" })), "forgotten: seen anew");
});

test("label order does not matter", () => {
  const changes = new DeviceChanges();
  changes.changed(device(1, { a: "1", b: "2" }));
  assert.not.ok(changes.changed(device(1, { b: "2", a: "1" })));
});

test.run();

import { test } from "uvu";
import * as assert from "uvu/assert";
import { mergeConditions } from "../../capabilities/conditions";

test("lastTransitionTime moves only when the status changes", () => {
  const first = mergeConditions(
    undefined,
    [{ type: "Ready", status: "False", reason: "SecretNotFound", message: "m1" }],
    1,
    "T1",
  );
  assert.equal(first, [
    {
      type: "Ready",
      status: "False",
      reason: "SecretNotFound",
      message: "m1",
      observedGeneration: 1,
      lastTransitionTime: "T1",
    },
  ]);
  const sameStatus = mergeConditions(
    first,
    [{ type: "Ready", status: "False", reason: "KeyMissing", message: "m2" }],
    2,
    "T2",
  );
  assert.is(sameStatus[0].lastTransitionTime, "T1");
  assert.is(sameStatus[0].observedGeneration, 2);
  const flipped = mergeConditions(
    sameStatus,
    [{ type: "Ready", status: "True", reason: "ExternalBucket", message: "m3" }],
    2,
    "T3",
  );
  assert.is(flipped[0].lastTransitionTime, "T3");
});

test.run();

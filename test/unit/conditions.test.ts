import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  mergeConditions,
  sameModuleStatus,
  type ModuleStatus,
} from "../../capabilities/conditions";

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

test("a status read back from the API server equals the one the module built", () => {
  const built: ModuleStatus = {
    observedGeneration: 2,
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "ExternalBucket",
        message: "m",
        observedGeneration: 2,
        lastTransitionTime: "t",
      },
      {
        type: "BucketClaimReady",
        status: "False",
        reason: "ObcPending",
        message: "p",
        observedGeneration: 2,
        lastTransitionTime: "t",
      },
    ],
    storage: {
      kind: "external",
      bucket: "b",
      endpoint: "http://s3:80",
      configSecret: "d-data-upload",
    },
    dataObc: undefined,
  };
  // Keys in another order, conditions in another order, an absent field instead of undefined.
  const stored: ModuleStatus & { conditions: { reason: string }[] } = JSON.parse(
    JSON.stringify({
      storage: {
        configSecret: "d-data-upload",
        endpoint: "http://s3:80",
        kind: "external",
        bucket: "b",
      },
      conditions: [
        {
          lastTransitionTime: "t",
          message: "p",
          observedGeneration: 2,
          reason: "ObcPending",
          status: "False",
          type: "BucketClaimReady",
        },
        {
          lastTransitionTime: "t",
          message: "m",
          observedGeneration: 2,
          reason: "ExternalBucket",
          status: "True",
          type: "Ready",
        },
      ],
      observedGeneration: 2,
    }),
  );
  assert.ok(sameModuleStatus(built, stored));
  assert.not.ok(sameModuleStatus(built, { ...stored, observedGeneration: 3 }));
  const otherReason = structuredClone(stored);
  otherReason.conditions[1].reason = "NoStorage";
  assert.not.ok(sameModuleStatus(built, otherReason));
  assert.not.ok(sameModuleStatus(built, { ...stored, dataObc: "d" }));
});

test.run();

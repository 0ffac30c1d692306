import { test } from "uvu";
import * as assert from "uvu/assert";
import type { EdgeWorkload } from "../../capabilities/generated/edgeworkload-v1alpha1";
import { labelsMatch, workloadSelects } from "../../capabilities/selector";

test("matchLabels and every matchExpressions operator", () => {
  const labels = { dc: "home", tier: "edge" };
  assert.ok(labelsMatch({ matchLabels: { dc: "home" } }, labels));
  assert.not.ok(labelsMatch({ matchLabels: { dc: "lab" } }, labels));
  assert.ok(
    labelsMatch(
      { matchExpressions: [{ key: "dc", operator: "In", values: ["lab", "home"] }] },
      labels,
    ),
  );
  assert.not.ok(
    labelsMatch({ matchExpressions: [{ key: "dc", operator: "NotIn", values: ["home"] }] }, labels),
  );
  assert.ok(
    labelsMatch({ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["x"] }] }, labels),
  );
  assert.ok(labelsMatch({ matchExpressions: [{ key: "tier", operator: "Exists" }] }, labels));
  assert.not.ok(
    labelsMatch({ matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, labels),
  );
  assert.not.ok(
    labelsMatch(
      { matchLabels: { dc: "home" }, matchExpressions: [{ key: "gpu", operator: "Exists" }] },
      labels,
    ),
  );
  assert.ok(labelsMatch({}, labels), "an empty selector selects everything");
});

test("spec.device wins over the selector; neither selects nothing", () => {
  const w = (spec: Record<string, unknown>) => ({ spec: { type: "pod", ...spec } }) as EdgeWorkload;
  const device = { name: "cam-1", labels: { dc: "home" } };
  assert.ok(
    workloadSelects(w({ device: "cam-1", deviceSelector: { matchLabels: { dc: "lab" } } }), device),
  );
  assert.not.ok(
    workloadSelects(
      w({ device: "cam-2", deviceSelector: { matchLabels: { dc: "home" } } }),
      device,
    ),
  );
  assert.ok(workloadSelects(w({ deviceSelector: { matchLabels: { dc: "home" } } }), device));
  assert.not.ok(workloadSelects(w({}), device));
});

test.run();

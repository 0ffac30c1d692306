import { test } from "uvu";
import * as assert from "uvu/assert";
import { injectExport } from "../../capabilities/export-volume";
import type { EdgeWorkload } from "../../capabilities/generated/edgeworkload-v1alpha1";
import { workloadProblems } from "../../capabilities/workload-validation";

function workload(
  spec: Record<string, unknown>,
  paths = [{ source: "stats", target: "statistics" }],
): EdgeWorkload {
  return {
    metadata: { name: "w" },
    spec: { type: "pod", pod: { spec }, data: { paths } },
  } as EdgeWorkload;
}
const ok = { containers: [{ name: "c" }] };

test("the injected workload is valid", () => {
  assert.equal(workloadProblems(workload(injectExport("w", ok))), []);
});

test("a user's own mount at or under /export is refused, naming the field", () => {
  const spec = {
    containers: [
      {
        name: "c",
        volumeMounts: [
          { name: "mine", mountPath: "/export/" },
          { name: "x", mountPath: "/data" },
        ],
      },
      { name: "d", volumeMounts: [{ name: "y", mountPath: "/export/sub" }] },
    ],
  };
  assert.equal(workloadProblems(workload(spec)), [
    'spec.pod.spec.containers[0].volumeMounts[0].mountPath: "/export/" is reserved for the data upload volume, which is added automatically; remove this mount',
    'spec.pod.spec.containers[1].volumeMounts[0].mountPath: "/export/sub" is reserved for the data upload volume, which is added automatically; remove this mount',
  ]);
  assert.equal(
    workloadProblems(
      workload({
        containers: [{ name: "c", volumeMounts: [{ name: "z", mountPath: "/exports" }] }],
      }),
    ),
    [],
  );
});

test("bad data paths are refused, naming the field", () => {
  const problems = workloadProblems(
    workload(ok, [
      { source: "", target: "a" },
      { source: "/abs", target: "b" },
      { source: "ok", target: "../up" },
      { source: "s", target: "a/" },
    ]),
  );
  assert.equal(problems, [
    "spec.data.paths[0].source: must not be empty",
    "spec.data.paths[1].source: must be relative, not absolute",
    "spec.data.paths[2].target: must not contain '..'",
    'spec.data.paths[3].target: "a/" is already the target of spec.data.paths[0]',
  ]);
});

test("data paths without containers are refused", () => {
  assert.equal(workloadProblems(workload({})), [
    "spec.pod.spec.containers: a workload with data paths needs at least one container to write them",
  ]);
  assert.equal(workloadProblems(workload({}, [])), []);
});

test.run();

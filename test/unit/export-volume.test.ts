import { test } from "uvu";
import * as assert from "uvu/assert";
import { exportVolumeName, injectExport, type PodSpec } from "../../capabilities/export-volume";

const seed: PodSpec = {
  containers: [{ name: "stats-collector", image: "quay.io/jdzon/os-stats:v1" }],
};

test("the seed's pod gets the volume and the mount, as in the design document", () => {
  assert.equal(injectExport("os-stats", seed), {
    containers: [
      {
        name: "stats-collector",
        image: "quay.io/jdzon/os-stats:v1",
        volumeMounts: [{ name: "export-os-stats", mountPath: "/export" }],
      },
    ],
    volumes: [
      {
        name: "export-os-stats",
        hostPath: {
          path: "/var/local/yggdrasil/device/volumes/os-stats",
          type: "DirectoryOrCreate",
        },
      },
    ],
  });
});

test("injecting twice changes nothing", () => {
  const once = injectExport("os-stats", seed);
  assert.equal(injectExport("os-stats", once), once);
});

test("every container (and init container) gets the mount; the user's own volumes stay", () => {
  const spec = injectExport("w", {
    containers: [
      { name: "a", volumeMounts: [{ name: "data", mountPath: "/data" }] },
      { name: "b" },
    ],
    initContainers: [{ name: "init" }],
    volumes: [{ name: "data", emptyDir: {} }],
  });
  assert.equal(
    spec.containers!.map(c => c.volumeMounts!.map(m => m.mountPath)),
    [["/data", "/export"], ["/export"]],
  );
  assert.equal(spec.initContainers![0].volumeMounts, [{ name: "export-w", mountPath: "/export" }]);
  assert.equal(
    spec.volumes!.map(v => v.name),
    ["data", "export-w"],
  );
});

test("a long workload name still gives a valid volume name", () => {
  const name = exportVolumeName("a".repeat(80));
  assert.ok(name.length <= 63 && /^export-a+-[0-9a-f]{8}$/.test(name), name);
  assert.is(exportVolumeName("a".repeat(80)), name, "stable");
});

test.run();

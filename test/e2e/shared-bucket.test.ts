/**
 * Devices sharing one bucket, as a fleet does: without a key prefix their keys collide, and both
 * devices say so (condition KeysCollide, a Warning Event); with spec.storage.keyPrefix
 * `{namespace}/{device}` (set with a patch, as `kubectl edit` does) each device's agent writes
 * under its own prefix and no object is lost. Two workloads on one device whose targets overlap:
 * the later one is left out, with a condition. Admission refuses a bad template and a bad glob.
 * The module's metrics are scraped from Pepr's endpoint.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runAgent } from "../support/agent-cli";
import { applyYaml, condition, conditionWhere, configWhere, s3Objects } from "../support/devices";
import { tempDir } from "../support/device-files";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { kubectl, kubectlOk } from "../support/kubectl";
import { moduleMetrics } from "../support/module";
import { uniqueName } from "../support/names";
import { getObject, listKeys, newBucket } from "../support/s3";

const ns = uniqueName("shared");
const devices = ["cam-a", "cam-b"];
let root = "";
let bucket = "";

const deviceYaml = (name: string, keyPrefix?: string) =>
  JSON.stringify({
    apiVersion: "management.project-flotta.io/v1alpha1",
    kind: "EdgeDevice",
    metadata: { name, labels: { fleet: "cams" } },
    spec: {
      storage: {
        ...(keyPrefix !== undefined ? { keyPrefix } : {}),
        s3: { configMapName: "shared", secretName: "shared", createOBC: false },
      },
    },
  });

const workloadYaml = (name: string, selector: string, paths: string) => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: ${name} }
spec:
  ${selector}
  type: pod
  pod: { spec: { containers: [{ name: c, image: busybox }] } }
  data: { paths: ${paths} }
`;

test.before(async () => {
  root = await tempDir("shared");
  bucket = await newBucket("shared");
  kubectlOk(["create", "namespace", ns]);
  applyYaml(ns, s3Objects(ns, "shared", bucket, new URL(testEnv.s3.endpoint), testEnv.s3));
  applyYaml(
    ns,
    workloadYaml(
      "stats",
      "deviceSelector: { matchLabels: { fleet: cams } }",
      '[{ source: stats, target: statistics, exclude: ["*.tmp"] }]',
    ),
  );
  for (const d of devices) applyYaml(ns, deviceYaml(d));
});

test.after(async () => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test("devices sharing a bucket without a key prefix: KeysCollide on both, naming the other", async () => {
  for (const [me, other] of [devices, [...devices].reverse()]) {
    const c = await conditionWhere(ns, me, "SharedBucketOverlap", "KeysCollide", 30_000);
    assert.is(c.status, "True");
    assert.match(c.message, new RegExp(`^This device and EdgeDevice ${ns}/${other} upload`));
  }
  await eventually("a Warning Event on cam-a", () =>
    kubectlOk([
      "get",
      "events",
      "-n",
      ns,
      "--field-selector",
      "involvedObject.name=cam-a,type=Warning",
      "-o",
      "jsonpath={.items[*].reason}",
    ]).includes("SharedBucketOverlap")
      ? true
      : undefined,
  );
});

test("admission refuses a keyPrefix template it cannot expand, naming the field", () => {
  for (const bad of ["{nope}/x", "../{device}", "a/../b"]) {
    const out = kubectl(["apply", "-n", ns, "-f", "-"], { input: deviceYaml("cam-bad", bad) });
    assert.is.not(out.status, 0, `accepted keyPrefix ${bad}`);
    assert.match(out.stderr, /spec\.storage\.keyPrefix/);
  }
  const glob = kubectl(["apply", "-n", ns, "-f", "-"], {
    input: workloadYaml(
      "bad-glob",
      "device: cam-a",
      '[{ source: s, target: t, include: ["[abc"] }]',
    ),
  });
  assert.is.not(glob.status, 0);
  assert.match(glob.stderr, /spec\.data\.paths\[0\]\.include\[0\]: has an unclosed \[/);
});

/** A device kubeconfig minted the documented way. */
function mintKubeconfig(device: string): string {
  const path = join(root, `${device}.kubeconfig`);
  const minted = spawnSync(
    "npm",
    ["run", "-s", "device-kubeconfig", "--", `${ns}/${device}`, "--output", path],
    { encoding: "utf8" },
  );
  assert.is(minted.status, 0, minted.stderr);
  return path;
}

test("with keyPrefix {namespace}/{device}, both agents upload the same names and nothing is lost", async () => {
  for (const d of devices)
    kubectlOk([
      "patch",
      "edgedevice",
      d,
      "-n",
      ns,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { storage: { keyPrefix: "{namespace}/{device}" } } }),
    ]);
  for (const d of devices) {
    await configWhere(ns, d, "its key prefix", c => c.keyPrefix === `${ns}/${d}`, 30_000);
    const c = await conditionWhere(ns, d, "DistinctPrefixes", "KeysCollide", 30_000);
    assert.is(c.status, "False");
    assert.is(condition(ns, d, "KeyPrefixValid")?.status, "True");
  }
  for (const d of devices) {
    const volumes = join(root, d, "volumes");
    await mkdir(join(volumes, "stats", "stats"), { recursive: true });
    await writeFile(join(volumes, "stats", "stats", "load.json"), `load of ${d}`);
    await writeFile(join(volumes, "stats", "stats", "part.tmp"), "not uploaded");
    const run = await runAgent([
      "sync",
      "--once",
      "--kubeconfig",
      mintKubeconfig(d),
      "--device",
      `${ns}/${d}`,
      "--volumes-dir",
      volumes,
      "--state-dir",
      join(root, d, "state"),
    ]);
    assert.is(run.status, 0, run.stderr);
  }
  assert.equal(
    [...(await listKeys(bucket)).keys()].sort(),
    devices.map(d => `${ns}/${d}/statistics/load.json`),
  );
  for (const d of devices)
    assert.is(
      (await getObject(bucket, `${ns}/${d}/statistics/load.json`)).toString(),
      `load of ${d}`,
    );
  const row = kubectlOk(["get", "edgedevice", "cam-a", "-n", ns, "-o", "wide", "--no-headers"]);
  // -o wide: ... LAST-UPLOAD WAITING KEY-PREFIX AGE
  assert.match(row.trim(), /\s0\s+\{namespace\}\/\{device\}\s+\d+s$/);
});

test("two workloads on one device with overlapping targets: the later one is left out", async () => {
  applyYaml(
    ns,
    workloadYaml("later", "device: cam-a", "[{ source: more, target: statistics/more }]"),
  );
  const c = await conditionWhere(ns, "cam-a", "InvalidWorkload", "WorkloadsValid", 30_000);
  assert.is(c.status, "False");
  assert.match(
    c.message,
    new RegExp(
      `EdgeWorkload ${ns}/later: spec\\.data\\.paths\\[0\\]\\.target: "statistics/more" overlaps the target "statistics" of EdgeWorkload stats`,
    ),
  );
  const config = await configWhere(ns, "cam-a", "without the later workload", c =>
    c.workloads.every(w => w.name !== "later"),
  );
  assert.equal(
    config.workloads.map(w => w.name),
    ["stats"],
  );
  // Moved to a target of its own, it is taken in.
  applyYaml(ns, workloadYaml("later", "device: cam-a", "[{ source: more, target: more }]"));
  await configWhere(ns, "cam-a", "with the later workload", c =>
    c.workloads.some(w => w.name === "later"),
  );
});

/** `name{labels} value` lines of Pepr's /metrics (the watcher's server, which reconciles). */
async function scrapeModule(): Promise<Map<string, number>> {
  return new Map(
    moduleMetrics()
      .split("\n")
      .filter(l => l && !l.startsWith("#"))
      .map(l => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]),
  );
}

test("the module's metrics: devices by readiness and storage, reconciles, queue", async () => {
  const m = await scrapeModule();
  assert.ok(m.get('pepr_edge_devices{ready="True",storage="external"}')! >= devices.length);
  assert.ok(m.get("pepr_edge_reconciles_total")! >= devices.length);
  assert.ok(m.has("pepr_edge_reconcile_errors_total"));
  assert.ok(m.get("pepr_edge_queue_depth")! >= 0);
  assert.ok(m.get("pepr_edge_queue_retrying")! >= 0);
  // A device without storage shows up as not ready, with storage "none".
  const before = m.get('pepr_edge_devices{ready="False",storage="none"}') ?? 0;
  applyYaml(
    ns,
    '{"apiVersion":"management.project-flotta.io/v1alpha1","kind":"EdgeDevice","metadata":{"name":"bare"},"spec":{"storage":{"s3":{"createOBC":false}}}}',
  );
  await eventually("the bare device counted", async () =>
    ((await scrapeModule()).get('pepr_edge_devices{ready="False",storage="none"}') ?? 0) ===
    before + 1
      ? true
      : undefined,
  );
  kubectlOk(["delete", "edgedevice", "bare", "-n", ns]);
  await eventually("the bare device no longer counted", async () =>
    ((await scrapeModule()).get('pepr_edge_devices{ready="False",storage="none"}') ?? 0) === before
      ? true
      : undefined,
  );
});

test.run();

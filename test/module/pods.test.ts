/**
 * What only pods show: the module as `pepr deploy` runs it, on the local node (hack/node.sh),
 * from the controller image built here. A watcher pod killed in the middle of reconciling a
 * fleet, a rolling update of the admission Deployment to a new image, and no admission pod at
 * all (the webhooks' failure policy).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  applyYaml,
  condition,
  deviceConfig,
  namespaceWithExternalStorage,
  workloadYaml,
} from "../support/devices";
import { deviceConfigSecretName } from "../../agent/config/device-config";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { kubectl, kubectlJson, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";

const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const MODULE_NS = "pepr-system";
const ADMISSION = `pepr-${uuid}`;
const ns = uniqueName("pods");

interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { containers: { image: string }[] };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}

const pods = (role: "admission" | "watcher") =>
  kubectlJson<{ items: Pod[] }>([
    "get",
    "pods",
    "-n",
    MODULE_NS,
    "-l",
    `pepr.dev/controller=${role}`,
  ]).items;
const ready = (pod: Pod) =>
  !pod.metadata.deletionTimestamp &&
  pod.status.conditions?.some(c => c.type === "Ready" && c.status === "True");

const device = (name: string) => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: ${name} }
spec: { requestTime: "2026-12-07T00:00:00Z", storage: { s3: { configMapName: ext, secretName: ext, createOBC: false } } }
`;
const workload = (name: string) =>
  workloadYaml(
    name,
    "{ containers: [{ name: app, image: quay.io/example/app:1 }] }",
    "[{ source: out, target: out }]",
  );
/** An EdgeWorkload through the webhooks, stored nowhere (server-side dry run). */
const admitted = () =>
  kubectl(["create", "--dry-run=server", "-n", ns, "-o", "name", "-f", "-"], {
    input: workload("probe"),
  });

/** SIGKILL to every process of the pod (its containers and sandbox), as a crash or an OOM kill. */
function killPodProcesses(pod: Pod): number {
  let killed = 0;
  for (const pid of readdirSync("/proc").filter(name => /^\d+$/.test(name))) {
    let cgroups = "";
    try {
      cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    if (!cgroups.includes(`/pod${pod.metadata.uid}/`)) continue;
    try {
      process.kill(Number(pid), "SIGKILL");
      killed++;
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}

/** How many of the devices have their config Secret (one request). */
const configuredCount = (devices: string[]) => {
  const secrets = new Set(kubectlOk(["get", "secrets", "-n", ns, "-o", "name"]).split("\n"));
  return devices.filter(d => secrets.has(`secret/${deviceConfigSecretName(d)}`)).length;
};

/** kubectl with `input` on stdin, not waited for; resolves to its exit code. */
function kubectlAsync(args: string[], input: string): Promise<number> {
  const child = spawn("kubectl", args, { stdio: ["pipe", "ignore", "inherit"] });
  child.stdin.end(input);
  return new Promise(resolve => child.on("exit", code => resolve(code ?? -1)));
}

/** Device reconciles of namespace `ns` the watcher logged so far (debug level). */
const reconciledLines = () =>
  readFileSync(join(testEnv.logDir, "module.log"), "utf8")
    .split("\n")
    .filter(l => l.includes(`"device":"${ns}/`) && l.includes('"msg":"device reconciled"')).length;

test.before(() => namespaceWithExternalStorage(ns));
test.after(() => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("a watcher pod killed while it reconciles a fleet is replaced, and the fleet converges", async () => {
  const fleet = Array.from({ length: 200 }, (_, i) => `cam-${i}`);
  const [victim] = pods("watcher");
  assert.ok(victim && ready(victim), "a ready watcher pod to start from");
  // The fleet is applied while the watcher is watched: killed at its first reconcile of it.
  const applying = kubectlAsync(["apply", "-n", ns, "-f", "-"], fleet.map(device).join("---\n"));
  await eventually("the watcher's first reconcile of the fleet", () =>
    reconciledLines() > 0 ? true : undefined,
  );
  // Killed at once (no graceful stop), then deleted so that its ReplicaSet replaces it.
  assert.ok(killPodProcesses(victim) > 0, "no process of the watcher pod found");
  const configured = configuredCount(fleet);
  kubectlOk([
    "delete",
    "pod",
    "-n",
    MODULE_NS,
    victim.metadata.name,
    "--grace-period=0",
    "--force",
  ]);
  process.stdout.write(
    `\n    watcher killed with ${configured} of ${fleet.length} devices configured\n`,
  );
  assert.ok(configured < fleet.length, "the fleet was already configured: nothing was cut short");
  assert.is(await applying, 0, "kubectl apply of the fleet failed");
  const successor = await eventually(
    "a new ready watcher pod",
    () => pods("watcher").find(p => p.metadata.name !== victim.metadata.name && ready(p)),
    120_000,
  );
  assert.is.not(successor.metadata.name, victim.metadata.name);
  await eventually(
    "every device configured and Ready",
    () =>
      fleet.every(name => deviceConfig(ns, name) && condition(ns, name)?.status === "True")
        ? true
        : undefined,
    180_000,
  );
});

test("a rolling update to a new image keeps admission answering", async () => {
  const built = spawnSync("bash", ["hack/module-image.sh", "rollout"], { encoding: "utf8" });
  assert.is(built.status, 0, built.stderr);
  const [image, archive] = built.stdout.trim().split(" ");
  const imported = spawnSync("bash", ["hack/node.sh", "import", archive], { encoding: "utf8" });
  assert.is(imported.status, 0, imported.stderr);
  const before = pods("admission");
  const original = before[0].spec.containers[0].image;
  assert.is.not(original, image);

  const answers = { ok: 0, refused: [] as string[] };
  let rolling = true;
  const probe = (async () => {
    while (rolling) {
      const r = admitted();
      if (r.status === 0) answers.ok++;
      else answers.refused.push(r.stderr.trim());
      await new Promise(resolve => setTimeout(resolve, 100));
    }
  })();
  try {
    kubectlOk(["set", "image", "-n", MODULE_NS, `deployment/${ADMISSION}`, `server=${image}`]);
    kubectlOk(["rollout", "status", "-n", MODULE_NS, `deployment/${ADMISSION}`, "--timeout=180s"]);
    // The old pods' last seconds too: until they are gone.
    await eventually(
      "the old admission pods gone",
      () => (pods("admission").every(p => p.spec.containers[0].image === image) ? true : undefined),
      60_000,
    );
  } finally {
    rolling = false;
    await probe;
  }
  process.stdout.write(
    `\n    during the rollout: ${answers.ok} admission requests answered, ${answers.refused.length} refused\n`,
  );
  assert.equal(answers.refused, [], "admission refused requests during the rollout");
  assert.ok(answers.ok >= 10, `only ${answers.ok} requests made during the rollout`);
  const after = pods("admission");
  assert.ok(after.every(p => p.spec.containers[0].image === image && ready(p)));
  assert.ok(after.every(p => !before.some(b => b.metadata.name === p.metadata.name)));
  // The Deployment stays on the new image (the same tree); the next `hack/module.sh start`
  // applies the manifest's again.
});

test("no admission pod ready: EdgeWorkloads are refused (failurePolicy Fail), nothing else is", async () => {
  kubectlOk(["scale", "-n", MODULE_NS, `deployment/${ADMISSION}`, "--replicas=0"]);
  try {
    await eventually(
      "no admission pod",
      () => (pods("admission").length === 0 ? true : undefined),
      60_000,
    );
    const refused = kubectl(["apply", "-n", ns, "-f", "-"], { input: workload("while-down") });
    assert.is.not(refused.status, 0, "an EdgeWorkload was admitted without the webhook");
    assert.match(refused.stderr, `failed calling webhook "pepr-${uuid}.pepr.dev"`);
    assert.is(kubectl(["get", "edgeworkload", "while-down", "-n", ns]).status, 1);
    // Devices, and everything else, do not pass through the module's webhooks.
    applyYaml(ns, device("while-down"));
    assert.is(kubectl(["get", "edgedevice", "while-down", "-n", ns]).status, 0);
  } finally {
    kubectlOk(["scale", "-n", MODULE_NS, `deployment/${ADMISSION}`, "--replicas=2"]);
    kubectlOk(["rollout", "status", "-n", MODULE_NS, `deployment/${ADMISSION}`, "--timeout=180s"]);
  }
  await eventually(
    "admission answering again",
    () => (admitted().status === 0 ? true : undefined),
    60_000,
  );
  applyYaml(ns, workload("while-down"));
  assert.is(kubectl(["get", "edgeworkload", "while-down", "-n", ns]).status, 0);
});

test.run();

/**
 * One fleet run against the module running on the local cluster (bench/fleet.sh starts it):
 *   1. W EdgeWorkloads selecting every device, then N EdgeDevices with external storage
 *      (`kubectl create`), in a fresh namespace;
 *   2. the time from the end of that create until every device's config Secret is correct
 *      (storage and all W workloads), followed by a watch on the config Secrets;
 *   3. the time from one workload edit (its target) until every config has it;
 *   4. the module's RSS (watcher process, now and peak);
 *   5. with --idle-seconds S: one real agent runs for device 0, and the API server's audit log
 *      counts, over S idle seconds, the requests of the module and of that agent; the API
 *      server's apiserver_request_total gives the total of all clients for comparison.
 * Prints one JSON line of results.
 *   npx tsx bench/fleet.ts --devices N --workloads W [--idle-seconds S] [--agent-root DIR]
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Informer, type KubeObject } from "../capabilities/informer";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "1000" },
    workloads: { type: "string", default: "50" },
    "idle-seconds": { type: "string", default: "0" },
    "agent-root": { type: "string", default: "." },
    timeout: { type: "string", default: "1800" },
  },
});
const N = Number(values.devices);
const W = Number(values.workloads);
const IDLE = Number(values["idle-seconds"]);
const TIMEOUT_MS = Number(values.timeout) * 1000;
const ns = `fleet-${Date.now().toString(36)}`;
const RUN_DIR = process.env.EDGE_RUN_DIR ?? join(process.env.HOME ?? "", ".cache/edge-upload/run");
const LOG_DIR = join(RUN_DIR, "logs");
const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;
const MODULE_USER = `system:serviceaccount:pepr-system:pepr-${uuid}`;

const kubectl = (args: string[], input?: string) =>
  execFileSync("kubectl", args, { input, encoding: "utf8", maxBuffer: 1 << 28 });
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
const say = (msg: string) => process.stderr.write(`[fleet ${ns}] ${msg}\n`);

function fleetYaml(): { workloads: string; devices: string } {
  const workloads = Array.from({ length: W }, (_, i) => ({
    apiVersion: "management.project-flotta.io/v1alpha1",
    kind: "EdgeWorkload",
    metadata: { name: `w-${i}`, namespace: ns },
    spec: {
      type: "pod",
      deviceSelector: { matchLabels: { fleet: "yes" } },
      pod: { spec: { containers: [{ name: "c", image: "busybox" }] } },
      data: { paths: [{ source: `src-${i}`, target: `t-${i}` }] },
    },
  }));
  const devices = Array.from({ length: N }, (_, i) => ({
    apiVersion: "management.project-flotta.io/v1alpha1",
    kind: "EdgeDevice",
    metadata: { name: `d-${i}`, namespace: ns, labels: { fleet: "yes" } },
    spec: { storage: { s3: { configMapName: "ext", secretName: "ext", createOBC: false } } },
  }));
  const list = (items: object[]) => JSON.stringify({ apiVersion: "v1", kind: "List", items });
  return { workloads: list(workloads), devices: list(devices) };
}

/** Each config Secret of the namespace, summarised: bucket and the workloads' targets. */
function watchConfigs(): Informer<string> {
  const informer = new Informer<string>(
    {
      path: `/api/v1/namespaces/${ns}/secrets`,
      labelSelector: "app.kubernetes.io/managed-by=edge-data-upload",
      keep: (obj: KubeObject) => {
        const raw = (obj as { data?: Record<string, string> }).data?.["config.json"];
        if (!raw) return "";
        const config = JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as {
          storage?: { bucket?: string };
          workloads?: { paths: { target: string }[] }[];
        };
        const targets = (config.workloads ?? []).map(w => w.paths[0]?.target).join(",");
        return `${config.storage?.bucket}|${targets}`;
      },
    },
    { change: () => undefined, warn: (o, m) => say(`${m} ${JSON.stringify(o)}`) },
  );
  void informer.run();
  return informer;
}

const expected = (edited: boolean) =>
  `fleet-bucket|${Array.from({ length: W }, (_, i) => (i === 0 && edited ? "t-0-edited" : `t-${i}`))
    .sort()
    .join(",")}`;

/** Milliseconds from `from` until all N configs are `want`; undefined after the timeout. */
async function allCorrect(configs: Informer<string>, want: string, from: number) {
  for (;;) {
    let correct = 0;
    for (const key of configs.keys()) {
      const value = configs.get(key) ?? "";
      const [bucket, targets] = value.split("|");
      if (`${bucket}|${targets.split(",").sort().join(",")}` === want) correct++;
    }
    if (correct === N) return Date.now() - from;
    if (Date.now() - from > TIMEOUT_MS) {
      say(`timed out with ${correct}/${N} correct`);
      return undefined;
    }
    await sleep(100);
  }
}

function rssMiB(): { rss: number; peak: number } {
  const pid = execFileSync("bash", ["hack/module-pid.sh", "watcher"], { encoding: "utf8" }).trim();
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (f: string) =>
    Math.round(Number(new RegExp(`${f}:\\s+(\\d+)`).exec(status)![1]) / 1024);
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

function requestTotal(): number {
  const text = kubectl(["get", "--raw", "/metrics"]);
  let total = 0;
  for (const line of text.split("\n"))
    if (line.startsWith("apiserver_request_total{")) total += Number(line.split(" ").pop());
  return total;
}

/**
 * The audit log's lines since `mark`. The API server rotates the log (200 MB): when the file at
 * the mark was moved away, the rest of it is read from the backup, then the new file whole.
 */
function auditLinesSince(mark: { ino: number; size: number }): string[] {
  const current = join(LOG_DIR, "audit.log");
  const read = (path: string, from: number) => readFileSync(path).subarray(from).toString("utf8");
  if (statSync(current).ino === mark.ino) return read(current, mark.size).split("\n");
  const backup = readdirSync(LOG_DIR)
    .filter(f => /^audit-.*\.log$/.test(f))
    .map(f => join(LOG_DIR, f))
    .find(f => statSync(f).ino === mark.ino);
  return `${backup ? read(backup, mark.size) : ""}\n${read(current, 0)}`.split("\n");
}

/** Requests in the audit log since `mark`, by the module and by the agent's account. */
function auditCounts(mark: { ino: number; size: number }, agentUser: string) {
  const lines = auditLinesSince(mark);
  const counts = { module: 0, agent: 0, moduleByVerb: {} as Record<string, number> };
  for (const line of lines) {
    if (!line) continue;
    const e = JSON.parse(line) as {
      stage?: string;
      verb: string;
      user: { username: string };
      userAgent?: string;
      objectRef?: { resource?: string };
    };
    if (e.stage && e.stage !== "ResponseComplete" && e.stage !== "ResponseStarted") continue;
    if (e.user.username === MODULE_USER && !e.userAgent?.startsWith("kubectl/")) {
      if (e.stage === "ResponseStarted" && e.verb !== "watch") continue;
      if (e.stage === "ResponseComplete" && e.verb === "watch") continue;
      counts.module++;
      const k = `${e.verb} ${e.objectRef?.resource}`;
      counts.moduleByVerb[k] = (counts.moduleByVerb[k] ?? 0) + 1;
    }
    if (e.user.username === agentUser) {
      if (e.stage === "ResponseStarted" && e.verb !== "watch") continue;
      if (e.stage === "ResponseComplete" && e.verb === "watch") continue;
      counts.agent++;
    }
  }
  return counts;
}

async function idleWindow() {
  const root = mkdtempSync(join(tmpdir(), "fleet-agent-"));
  const kubeconfig = join(root, "device.kubeconfig");
  execFileSync("bash", ["hack/device-kubeconfig.sh", `${ns}/d-0`, "--output", kubeconfig], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const agentRoot = values["agent-root"]!;
  const agent = spawn(
    "npx",
    [
      "--no-install",
      "tsx",
      "agent/cli.ts",
      "run",
      "--kubeconfig",
      kubeconfig,
      "--device",
      `${ns}/d-0`,
      "--volumes-dir",
      join(root, "volumes"),
      "--state-dir",
      join(root, "state"),
    ],
    {
      cwd: agentRoot,
      stdio: ["ignore", "ignore", "ignore"],
      env: { ...process.env, LOG_LEVEL: "silent" },
    },
  );
  await sleep(20_000); // the agent reads its config and makes its first pass
  const auditFrom = statSync(join(LOG_DIR, "audit.log"));
  const metricsFrom = requestTotal();
  say(`idle for ${IDLE}s`);
  await sleep(IDLE * 1000);
  const counts = auditCounts(auditFrom, `system:serviceaccount:${ns}:d-0-data-upload-agent`);
  const all = requestTotal() - metricsFrom;
  agent.kill("SIGTERM");
  await new Promise(resolve => agent.once("exit", resolve));
  return { ...counts, allClients: all };
}

async function main() {
  say(`${N} devices, ${W} workloads`);
  kubectl(["create", "namespace", ns]);
  const s3 = new URL(process.env.EDGE_S3_ENDPOINT ?? "http://127.0.0.1:7070");
  kubectl(
    ["apply", "-n", ns, "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "ext" },
          data: {
            BUCKET_HOST: s3.hostname,
            BUCKET_PORT: s3.port,
            BUCKET_NAME: "fleet-bucket",
            BUCKET_REGION: "us-east-1",
          },
        },
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "ext" },
          stringData: { AWS_ACCESS_KEY_ID: "fleet-key", AWS_SECRET_ACCESS_KEY: "fleet-secret" },
        },
      ],
    }),
  );
  const configs = watchConfigs();
  const yaml = fleetYaml();
  const dir = mkdtempSync(join(tmpdir(), "fleet-"));
  writeFileSync(join(dir, "workloads.json"), yaml.workloads);
  writeFileSync(join(dir, "devices.json"), yaml.devices);
  kubectl(["create", "-f", join(dir, "workloads.json")]);
  const applyStart = Date.now();
  const created = spawnSync("kubectl", ["create", "-f", join(dir, "devices.json")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (created.status !== 0) throw new Error("kubectl create of the devices failed");
  const applyEnd = Date.now();
  say(`created in ${((applyEnd - applyStart) / 1000).toFixed(1)}s; waiting for every config`);
  const configuredMs = await allCorrect(configs, expected(false), applyEnd);
  say(`configured after ${configuredMs}ms`);
  const rssAfterApply = rssMiB();

  kubectl([
    "patch",
    "edgeworkload",
    "w-0",
    "-n",
    ns,
    "--type=json",
    "-p",
    '[{"op":"replace","path":"/spec/data/paths/0/target","value":"t-0-edited"}]',
  ]);
  const editEnd = Date.now();
  const fanOutMs =
    configuredMs === undefined ? undefined : await allCorrect(configs, expected(true), editEnd);
  say(`edit reached every config after ${fanOutMs}ms`);
  configs.stop();
  const idle = IDLE > 0 ? await idleWindow() : undefined;
  const rss = rssMiB();
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  process.stdout.write(
    `${JSON.stringify({
      devices: N,
      workloads: W,
      createSeconds: (applyEnd - applyStart) / 1000,
      configuredSeconds: configuredMs === undefined ? null : configuredMs / 1000,
      fanOutSeconds: fanOutMs === undefined ? null : fanOutMs / 1000,
      rssMiB: rssAfterApply.rss,
      peakRssMiB: rss.peak,
      idleSeconds: IDLE,
      idle,
    })}\n`,
  );
  process.exit(0);
}

main().catch(err => {
  process.stderr.write(`fleet: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

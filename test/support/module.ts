/** Stopping and starting the module (hack/module.sh) from a test, with other settings. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { testEnv } from "./env";
import { kubectlOk } from "./kubectl";

/** `hack/module.sh start|stop`; `settings` set (a string) or unset (undefined) EDGE_UPLOAD_* variables. */
export function moduleCommand(
  verb: "start" | "stop",
  settings: Record<string, string | undefined> = {},
): void {
  const env = { ...process.env };
  for (const [name, value] of Object.entries(settings))
    if (value === undefined) delete env[name];
    else env[name] = value;
  const r = spawnSync("bash", ["hack/module.sh", verb], { encoding: "utf8", env });
  assert.is(r.status, 0, `hack/module.sh ${verb}: ${r.stderr}`);
}

/** Restarts the module with `settings` changed from the test run's. */
export function restartModule(settings: Record<string, string | undefined> = {}): void {
  moduleCommand("stop");
  moduleCommand("start", settings);
}

const watcherLog = () => join(testEnv.logDir, "module.log");

/** Now, as a mark to count reconciles from (the log starts over when the module restarts). */
export function moduleLogMark(): number {
  return Date.now();
}

/** How many reconciles of device `namespace/name` the module logged since `mark` (debug level). */
export function reconcilesSince(mark: number, namespace: string, name: string): number {
  const device = `"device":"${namespace}/${name}"`;
  return readFileSync(watcherLog(), "utf8")
    .split("\n")
    .filter(line => line.includes(device) && line.includes('"msg":"device reconciled"'))
    .filter(line => (JSON.parse(line) as { time: number }).time >= mark).length;
}

const uuid = (JSON.parse(readFileSync("package.json", "utf8")) as { pepr: { uuid: string } }).pepr
  .uuid;

/** Pepr's /metrics of the watcher pod, through its Service and the API server's service proxy. */
export function moduleMetrics(): string {
  return kubectlOk([
    "get",
    "--raw",
    `/api/v1/namespaces/pepr-system/services/https:pepr-${uuid}-watcher:443/proxy/metrics`,
  ]);
}

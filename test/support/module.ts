/** Stopping and starting the module (hack/module.sh) from a test, with other settings. */
import { spawnSync } from "node:child_process";
import * as assert from "uvu/assert";

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

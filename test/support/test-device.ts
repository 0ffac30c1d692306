/**
 * One test's device for the agent suites that run it from a config file: a temp root (volumes,
 * state dir, config.json) made before each test and removed after it, once the agent the test
 * started has stopped. The config `configure` writes has one workload, `cam`, whose data path
 * `data` goes to `out/` in the bucket.
 */
import type { Test } from "uvu";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { DataPath, DeviceConfigInput } from "../../agent/config/device-config";
import { startAgent, storageFor, writeConfig, type RunningAgent } from "./agent-cli";
import { tempDir } from "./device-files";

export interface TestDevice {
  readonly root: string;
  volumes(): string;
  /** `<volumes>/cam/data`: the source of the data path `configure` writes. */
  source(): string;
  /** --config, --volumes-dir and --state-dir of this device, then `more`. */
  args(...more: string[]): string[];
  /** The config: storage in `bucket`, the data path with `path`'s options; `more` overrides. */
  configure(
    bucket: string,
    path?: Partial<DataPath>,
    more?: Partial<DeviceConfigInput>,
  ): Promise<void>;
  /** `flotta-agent run` with args(...more); stopped after the test. */
  start(...more: string[]): RunningAgent;
}

export function testDevice(suite: Test, prefix: string): TestDevice {
  let root = "";
  let running: RunningAgent | undefined;
  suite.before.each(async () => {
    root = await tempDir(prefix);
  });
  suite.after.each(async () => {
    await running?.stop();
    running = undefined;
    // GNU rm walks by descriptor: Node's rm fails on folders past PATH_MAX (and a hook that
    // throws makes uvu stop the file without a word).
    execFileSync("rm", ["-rf", root]);
  });
  const volumes = () => join(root, "volumes");
  const args = (...more: string[]) => [
    "--config",
    join(root, "config.json"),
    "--volumes-dir",
    volumes(),
    "--state-dir",
    join(root, "state"),
    ...more,
  ];
  return {
    get root() {
      return root;
    },
    volumes,
    source: () => join(volumes(), "cam", "data"),
    args,
    configure: (bucket, path = {}, more = {}) =>
      writeConfig(join(root, "config.json"), {
        storage: storageFor(bucket),
        workloads: [{ name: "cam", paths: [{ source: "data", target: "out", ...path }] }],
        ...more,
      }),
    start: (...more) => (running = startAgent(args(...more))),
  };
}

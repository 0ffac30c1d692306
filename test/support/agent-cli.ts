/**
 * Runs flotta-agent the way a device does: a separate process with flags, JSON logs on stderr.
 * From source by default; `bin` points at a packed bundle instead. With EDGE_AGENT_EXE set (the
 * test command's second pass), every agent these tests start is that single executable.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import type { DeviceConfigInput } from "../../agent/config/device-config";
import { testEnv } from "./env";

const FROM_SOURCE = ["--import", "tsx", "agent/cli.ts"];

/** The command and its first arguments: a packed bundle on Node.js, the executable, or source. */
function agentCommand(bin?: string): [string, string[]] {
  if (bin) return [process.execPath, [bin]];
  const exe = process.env.EDGE_AGENT_EXE;
  return exe ? [exe, []] : [process.execPath, FROM_SOURCE];
}

export interface AgentRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runAgent(
  args: string[],
  options: {
    bin?: string;
    cwd?: string;
    timeoutMs?: number;
    /** Told the process as it starts (to watch its memory, say). */
    onSpawn?: (child: ChildProcess) => void;
  } = {},
): Promise<AgentRun> {
  const [command, first] = agentCommand(options.bin);
  const child = spawn(command, [...first, ...args], {
    cwd: options.cwd ?? process.cwd(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  options.onSpawn?.(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", d => (stdout += d));
  child.stderr.on("data", d => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", status => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export interface RunningAgent {
  child: ChildProcess;
  logs(): string;
  stop(): Promise<number | null>;
}

/** `flotta-agent run ...` in the background; `bin` runs a packed bundle instead of the source. */
export function startAgent(args: string[], options: { bin?: string } = {}): RunningAgent {
  const [command, first] = agentCommand(options.bin);
  const child = spawn(command, [...first, "run", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", d => (stderr += d));
  const exited = new Promise<number | null>(resolve => child.on("close", resolve));
  return {
    child,
    logs: () => stderr,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

export function storageFor(
  bucket: string,
  overrides: Partial<NonNullable<DeviceConfigInput["storage"]>> = {},
) {
  const s = testEnv.s3;
  return {
    kind: "external" as const,
    endpoint: s.endpoint,
    bucket,
    region: s.region,
    accessKeyId: s.accessKeyId,
    secretAccessKey: s.secretAccessKey,
    ...overrides,
  };
}

export async function writeConfig(
  path: string,
  config: Omit<DeviceConfigInput, "version" | "device"> & Partial<DeviceConfigInput>,
): Promise<void> {
  await writeFile(
    path,
    JSON.stringify({ version: 1, device: { namespace: "edge", name: "test-device" }, ...config }),
  );
}

/** Runs kubectl the way a person does: YAML in, text or JSON out. */
import { spawnSync } from "node:child_process";

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function kubectl(
  args: string[],
  options: { input?: string; token?: string } = {},
): KubectlResult {
  const auth = options.token ? [`--token=${options.token}`] : [];
  const result = spawnSync("kubectl", [...auth, ...args], {
    input: options.input,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** kubectl that must succeed; returns stdout. */
export function kubectlOk(
  args: string[],
  options: { input?: string; token?: string } = {},
): string {
  const result = kubectl(args, options);
  if (result.status !== 0) {
    throw new Error(`kubectl ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

export function kubectlJson<T = Record<string, unknown>>(args: string[]): T {
  return JSON.parse(kubectlOk([...args, "-o", "json"])) as T;
}

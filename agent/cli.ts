/**
 * `flotta-agent`: the entry point bundled into the device tarball. Wires options, config
 * source, logger and agent together; all decisions live in the modules it calls.
 */
import {
  FileConfigSource,
  SecretConfigSource,
  ConfigHolder,
  type ConfigSource,
} from "./config/sources";
import { Agent, type Reporting } from "./agent";
import { DeviceApi } from "./kube/client";
import { readKubeconfig, type KubeConnection } from "./kube/kubeconfig";
import { TokenRenewal } from "./kube/token-renewal";
import type { Logger } from "./sync/engine";
import { createLogger, registerSecret } from "./log";
import { parseOptions, USAGE, type AgentOptions } from "./options";
import { IndexStore } from "./sync/index-store";
import { RateLimiter } from "./sync/rate-limit";

// The SDK warns on Node 20 that its future releases need Node 22. The agent ships its SDK
// bundled and pinned, so the warning says nothing to a device operator; keep stderr JSON-only.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

declare const AGENT_VERSION: string | undefined;
const version = typeof AGENT_VERSION === "string" ? AGENT_VERSION : "dev";

function fail(message: string, code = 2): never {
  process.stderr.write(`flotta-agent: ${message}\n`);
  process.exit(code);
}

function source(
  options: AgentOptions,
  log: Logger,
): { source: ConfigSource; reporting?: Reporting } {
  if (options.configFile) return { source: new FileConfigSource(options.configFile) };
  let connection: KubeConnection;
  try {
    connection = readKubeconfig(options.kubeconfig!);
    registerSecret(connection.token?.());
  } catch (err) {
    fail(`cannot use kubeconfig ${options.kubeconfig}: ${(err as Error).message}`);
  }
  const api = new DeviceApi(connection);
  const tokenRenewal = new TokenRenewal(
    api,
    options.kubeconfig!,
    log,
    connection.inlineToken,
    options.tokenRenewBeforeSeconds,
  );
  return {
    source: new SecretConfigSource(api, options.device!),
    reporting: { api, device: options.device!, tokenRenewal },
  };
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

async function status(options: AgentOptions): Promise<void> {
  const indexes = await new IndexStore(options.stateDir).all();
  if (!indexes.length) {
    process.stdout.write(`no index in ${options.stateDir}: nothing has been synced yet\n`);
    return;
  }
  for (const index of indexes) {
    const files = Object.values(index.files);
    process.stdout.write(
      `${index.endpoint}/${index.bucket}: ${files.length} files, ${formatBytes(files.reduce((n, f) => n + f.size, 0))}\n`,
    );
    for (const [name, state] of Object.entries(index.workloads).sort()) {
      const mine = files.filter(f => f.workload === name);
      process.stdout.write(
        `  ${name}: ${mine.length} files, ${formatBytes(mine.reduce((n, f) => n + f.size, 0))}, last sync ${state.lastSyncTime ?? "never"}, last upload ${state.lastUploadTime ?? "never"}${state.lastError ? `, last error: ${state.lastError}` : ""}\n`,
      );
    }
  }
}

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  if (!parsed.ok) fail(`${parsed.error}\nRun "flotta-agent --help" for usage.`);
  const options = parsed.options;
  if (options.command === "help") return void process.stdout.write(`${USAGE}\n`);
  if (options.command === "version") return void process.stdout.write(`${version}\n`);
  if (options.command === "status") return status(options);

  const log = createLogger(options.logLevel);
  const { source: configSource, reporting } = source(options, log);
  let sentBytes = 0;
  const progress = options.command === "sync" && process.stderr.isTTY;
  const agent = new Agent(
    {
      volumesDir: options.volumesDir,
      stateDir: options.stateDir,
      intervalSeconds: options.intervalSeconds,
      configPollSeconds: 5,
      concurrency: options.concurrency,
      multipartConcurrency: 2,
      partSize: options.partSizeBytes,
      queueSize: options.queueSize,
      limiter: new RateLimiter(options.maxBytesPerSecond),
      onBytes: progress ? (n: number) => (sentBytes += n) : undefined,
    },
    new ConfigHolder(configSource),
    log,
    reporting,
  );
  log.info("flotta-agent starting", {
    version,
    command: options.command,
    config: configSource.description,
    volumesDir: options.volumesDir,
    stateDir: options.stateDir,
  });

  if (options.command === "sync") {
    const started = Date.now();
    const timer = progress
      ? setInterval(() => {
          const seconds = (Date.now() - started) / 1000;
          process.stderr.write(
            `\r\x1b[Ksent ${formatBytes(sentBytes)} in ${seconds.toFixed(0)} s (${formatBytes(sentBytes / Math.max(seconds, 0.001))}/s)`,
          );
        }, 500)
      : undefined;
    const outcome = await agent.syncOnce();
    if (timer) {
      clearInterval(timer);
      process.stderr.write("\r\x1b[K");
    }
    await agent.close();
    if (outcome.state === "synced") {
      const r = outcome.report;
      const complete = r.failures.length === 0 && r.changedDuringUpload === 0;
      process.stdout.write(
        `${complete ? "synced" : "incomplete"}: ${r.filesSeen} files seen, ${r.filesSent} sent (${formatBytes(r.bytesSent)}), ${r.adopted} already in the bucket, ${r.failures.length} failed, ${r.changedDuringUpload} changed while sending\n`,
      );
      process.exit(complete ? 0 : 1);
    }
    fail(outcome.reason, 1);
  }

  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log.info("stopping", { signal });
      controller.abort();
    });
  }
  await agent.run(controller.signal);
  log.info("stopped");
}

main().catch(err => fail(`unexpected error: ${(err as Error).stack ?? err}`, 1));

/**
 * `flotta-agent`: the entry point bundled into the device tarball. Wires options, config
 * source, logger and agent together; all decisions live in the modules it calls.
 */
import { realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { explain, locate } from "./explain";
import { DeletionLog } from "./sync/deletion-log";
import { FailureLog } from "./sync/failure-log";
import { toLocalFile } from "./sync/walk";
import {
  FileConfigSource,
  SecretConfigSource,
  ConfigHolder,
  type ConfigSource,
} from "./config/sources";
import { setMaxListeners } from "node:events";
import { Agent, type Reporting } from "./agent";
import { DeviceApi } from "./kube/client";
import { readKubeconfig, type KubeConnection } from "./kube/kubeconfig";
import { renewedToken, TokenRenewal } from "./kube/token-renewal";
import type { Logger } from "./sync/errors";
import { createLogger, registerSecret } from "./log";
import { parseOptions, USAGE, type AgentOptions } from "./options";
import { IndexStore, type DestinationIndex } from "./sync/index-store";
import { AgentMetrics, serveMetrics } from "./metrics";
import { lockStateDir, type StateLock } from "./state-lock";
import { RateLimiter } from "./sync/rate-limit";
import { filesWaiting } from "./status";
import { isSea } from "node:sea";
import { formatBytes } from "./config/quantity";

// The SDK warns on Node 20 that its future releases need Node 22. The agent ships its SDK
// bundled and pinned, so the warning says nothing to a device operator; keep stderr JSON-only.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

declare const AGENT_VERSION: string | undefined;
const version = typeof AGENT_VERSION === "string" ? AGENT_VERSION : "dev";

/** `--version`: the agent's version, then the Node.js it runs on (built in, as one executable). */
function versionText(): string {
  const builtIn = isSea() ? " (built in: single executable)" : "";
  return `${version}\nNode.js ${process.versions.node}${builtIn}`;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`flotta-agent: ${message}\n`);
  process.exit(code);
}

async function source(
  options: AgentOptions,
  log: Logger,
): Promise<{ source: ConfigSource; reporting?: Reporting }> {
  if (options.configFile) return { source: new FileConfigSource(options.configFile) };
  let connection: KubeConnection;
  try {
    connection = readKubeconfig(options.kubeconfig!);
    registerSecret(connection.token?.());
  } catch (err) {
    fail(`cannot use kubeconfig ${options.kubeconfig}: ${(err as Error).message}`);
  }
  const tokenPath = join(options.stateDir, "token");
  const renewed = connection.inlineToken && (await renewedToken(tokenPath, connection.inlineToken));
  if (renewed) {
    registerSecret(renewed);
    connection = { ...connection, inlineToken: renewed, token: () => renewed };
  }
  const api = new DeviceApi(connection);
  const tokenRenewal = new TokenRenewal(
    api,
    tokenPath,
    log,
    connection.inlineToken,
    options.tokenRenewBeforeSeconds,
  );
  return {
    source: new SecretConfigSource(api, options.device!, reason =>
      log.warn("cannot watch the config Secret: reading it every minute instead", { reason }),
    ),
    reporting: { api, device: options.device!, tokenRenewal },
  };
}

async function status(options: AgentOptions): Promise<void> {
  const indexes = await new IndexStore(options.stateDir).all();
  if (!indexes.length) {
    process.stdout.write(`no index in ${options.stateDir}: nothing has been synced yet\n`);
    return;
  }
  if (options.files) return listFiles(indexes, options.since);
  for (const index of indexes) {
    const totals = index.files.workloadTotals();
    const bytes = [...totals.values()].reduce((n, t) => n + t.bytes, 0);
    process.stdout.write(
      `${index.endpoint}/${index.bucket}: ${index.files.size} files, ${formatBytes(bytes)}\n`,
    );
    for (const [name, state] of Object.entries(index.workloads).sort()) {
      const mine = totals.get(name) ?? { files: 0, bytes: 0 };
      process.stdout.write(
        `  ${name}: ${mine.files} files, ${formatBytes(mine.bytes)}, last sync ${state.lastSyncTime ?? "never"}, last upload ${state.lastUploadTime ?? "never"}${state.lastError ? `, last error: ${state.lastError}` : ""}\n`,
      );
    }
  }
}

/**
 * The delivery record: each file the index holds as confirmed in the bucket, oldest first, as
 * tab-separated lines: destination, key, size, content hash (md5:<hex>, or etag:<multipart
 * ETag>/<part size> for a file sent in parts), confirmed at, and the object's size (the
 * compressed size for a compressed path; else the file's). Keys are JSON-quoted when they hold
 * a quote or a control character (a workload names its files: an escape sequence must not reach
 * the operator's terminal).
 */
function listFiles(indexes: DestinationIndex[], since?: number): void {
  process.stdout.write("destination\tkey\tsize\thash\tconfirmed\tstored\n");
  for (const index of indexes) {
    const rows: [string, string][] = [];
    for (const [key, entry] of index.files.entries()) {
      if (since !== undefined && Date.parse(entry.sentAt) < since) continue;
      const hash = entry.md5 ? `md5:${entry.md5}` : `etag:${entry.etag}/${entry.partSize}`;
      const shown = printableKey(key);
      const stored = entry.stored?.size ?? entry.size;
      rows.push([entry.sentAt, `${shown}\t${entry.size}\t${hash}\t${entry.sentAt}\t${stored}`]);
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const destination = `${index.endpoint}/${index.bucket}`;
    for (const [, row] of rows) process.stdout.write(`${destination}\t${row}\n`);
  }
}

/** A key as is, or JSON-quoted with every control character (C0, DEL, C1) escaped. */
function printableKey(key: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is looked for
  const control = /[\u0000-\u001f\u007f-\u009f]/;
  if (!control.test(key) && !key.includes('"')) return key;
  return JSON.stringify(key).replace(
    /[\u007f-\u009f]/g, // JSON.stringify leaves DEL and C1 as they are
    c => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** `explain PATH`: the facts the answer needs, gathered without writing anything. */
async function explainCommand(options: AgentOptions, log: Logger): Promise<number> {
  const { source: configSource } = await source(options, log);
  const holder = new ConfigHolder(configSource);
  await holder.refresh();
  const config = holder.current;
  if (!config) fail(`no usable device config: ${holder.problem ?? "none read"}`, 1);
  const volumes = await realpath(options.volumesDir).catch(() => resolve(options.volumesDir));
  const asked = resolve(options.explainPath!);
  const rel = relative(volumes, asked);
  if (!rel || rel.startsWith("..") || isAbsolute(rel))
    fail(`${asked} is not below the volumes dir ${volumes}`, 1);
  const located = locate(
    config,
    rel.split("/").map(s => Buffer.from(s)),
  );
  const file = await stat(asked, { bigint: true }).then(
    s => (s.isFile() ? toLocalFile(Buffer.from(asked), Buffer.from(volumes), "", s) : undefined),
    () => undefined,
  );
  const index =
    config.storage &&
    (await new IndexStore(options.stateDir).load(config.storage, true)).index.files;
  const key = located?.key ?? "";
  const facts = {
    config,
    located,
    file,
    entry: index?.get(key),
    deletion: await new DeletionLog(options.stateDir).find(key),
    failure: (await new FailureLog(options.stateDir).read()).get(key),
    now: Date.now(),
  };
  process.stdout.write(`${printableKey(asked)}: ${explain(facts)}\n`);
  return 0;
}

/** The metrics, when asked for; served at --metrics-address (a port in use ends the process). */
async function startMetrics(options: AgentOptions, log: Logger): Promise<AgentMetrics | undefined> {
  if (!options.metricsAddress && !options.metricsTextfile) return undefined;
  const metrics = new AgentMetrics();
  if (options.metricsAddress) {
    await serveMetrics(metrics, options.metricsAddress).catch(err =>
      fail(`cannot serve metrics at ${options.metricsAddress}: ${(err as Error).message}`),
    );
    log.info("serving metrics", { address: options.metricsAddress, path: "/metrics" });
  }
  return metrics;
}

/** Takes the state dir for this run, or ends the process: one agent per state dir. */
async function takeStateDir(options: AgentOptions, log: Logger): Promise<StateLock> {
  const lock = await lockStateDir(options.stateDir);
  if (lock.state === "busy")
    fail(`another agent (pid ${lock.pid}) uses the state dir ${options.stateDir}; stop it first`);
  if (lock.state === "unlocked")
    log.warn("cannot lock the state dir; going on without a lock", { reason: lock.reason });
  else if (lock.previous === "crash")
    log.warn("the last run did not stop cleanly; its leftovers are cleaned up");
  else if (lock.previous === "interrupted")
    log.info("the last run was stopped during a multipart upload; looking for it to abort");
  return lock;
}

/** SIGINT and SIGTERM abort the returned signal: the pass stops, in-flight uploads are aborted. */
function stopOnSignals(log: Logger): AbortSignal {
  const controller = new AbortController();
  // Every request in flight listens on it: Node's default of 10 would warn at --concurrency 11.
  setMaxListeners(10_000, controller.signal);
  // A second signal while stopping (systemd and a person may both send one) changes nothing:
  // the stop already under way saves the index; SIGKILL is there for a stop that hangs.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (controller.signal.aborted) return;
      log.info("stopping", { signal });
      controller.abort();
    });
  }
  return controller.signal;
}

async function syncCommand(agent: Agent, signal: AbortSignal, progress: Progress): Promise<number> {
  const stopProgress = progress.start();
  const outcome = await agent.syncOnce(signal);
  stopProgress();
  await agent.close();
  if (outcome.state !== "synced") {
    process.stderr.write(`flotta-agent: ${outcome.reason}\n`);
    return 1;
  }
  const r = outcome.report;
  const complete = filesWaiting(r) === 0 && !r.aborted && !r.walkProblems.length;
  const resumed = r.bytesReused
    ? ` (${formatBytes(r.bytesReused)} already sent before a stop)`
    : "";
  process.stdout.write(
    `${complete ? "synced" : "incomplete"}: ${r.filesSeen} files seen, ${r.filesSent} sent (${formatBytes(r.bytesSent)})${resumed}, ${r.adopted} already in the bucket, ${r.failures.length} failed, ${r.changedDuringUpload} changed while sending, ${r.quiet} waiting for their quiet period, ${r.skipped.length} not uploaded (see the log)\n`,
  );
  return complete ? 0 : 1;
}

interface Progress {
  onBytes?: (n: number) => void;
  start(): () => void;
}

/** A progress line on a terminal during `sync`; nothing elsewhere. */
function progressLine(enabled: boolean): Progress {
  if (!enabled) return { start: () => () => undefined };
  let sentBytes = 0;
  return {
    onBytes: n => (sentBytes += n),
    start() {
      const started = Date.now();
      const timer = setInterval(() => {
        const seconds = (Date.now() - started) / 1000;
        process.stderr.write(
          `\r\x1b[Ksent ${formatBytes(sentBytes)} in ${seconds.toFixed(0)} s (${formatBytes(sentBytes / Math.max(seconds, 0.001))}/s)`,
        );
      }, 500);
      return () => {
        clearInterval(timer);
        process.stderr.write("\r\x1b[K");
      };
    },
  };
}

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  if (!parsed.ok) fail(`${parsed.error}\nRun "flotta-agent --help" for usage.`);
  const options = parsed.options;
  if (options.command === "help") return void process.stdout.write(`${USAGE}\n`);
  if (options.command === "version") return void process.stdout.write(`${versionText()}\n`);
  if (options.command === "status") return status(options);

  const log = createLogger(options.logLevel);
  if (options.command === "explain") process.exit(await explainCommand(options, log));
  const { source: configSource, reporting } = await source(options, log);
  const lock = await takeStateDir(options, log);
  const signal = stopOnSignals(log);
  const progress = progressLine(options.command === "sync" && process.stderr.isTTY);
  const agent = new Agent(
    {
      volumesDir: options.volumesDir,
      stateDir: options.stateDir,
      intervalSeconds: options.intervalSeconds,
      events: options.events,
      rescanSeconds: options.rescanSeconds,
      maxWatches: options.maxWatches,
      eventDelayMs: 100,
      configPollSeconds: 5,
      statusHeartbeatSeconds: 1800,
      concurrency: options.concurrency,
      multipartConcurrency: 2,
      partSize: options.partSizeBytes,
      queueSize: options.queueSize,
      limiter: new RateLimiter(options.maxBytesPerSecond),
      onBytes: progress.onBytes,
      afterCrash: lock.state === "locked" && !!lock.previous,
      metrics: await startMetrics(options, log),
      metricsTextfile: options.metricsTextfile,
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
  let code = 0;
  if (options.command === "sync") code = await syncCommand(agent, signal, progress);
  else await agent.run(signal);
  if (lock.state === "locked") await lock.release(agent.interruptedMultipart);
  if (options.command === "run") log.info("stopped");
  process.exit(code);
}

main().catch(err => fail(`unexpected error: ${(err as Error).stack ?? err}`, 1));

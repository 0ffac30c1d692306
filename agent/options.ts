/**
 * Command line of `flotta-agent`: parsed into a plain object, or one clear error line. Pure.
 */
import { parseArgs } from "node:util";
import { LOG_LEVELS, type LogLevel } from "./log";

export const USAGE = `Usage: flotta-agent <command> [options]

Uploads the files that edge workloads write to S3, as configured by the device config.

Commands:
  run                  sync every interval until stopped (SIGINT/SIGTERM)
  sync --once          one sync pass; exit 0 only if every file was sent
  status               what the local index knows: files, bytes, last sync per workload
    --files            with it: every file confirmed in the bucket (key, size, MD5 or
                       multipart ETag, when confirmed), one per line, tab-separated
    --since TIME       with --files: only files confirmed at or after TIME (ISO 8601)
  explain PATH         why a file is or is not in the bucket: excluded by a glob, quiet until a
                       time, held by the bandwidth timetable, failed with an error, uploaded
                       (when, as which key) or deleted by retention (when); reads the config and
                       the state dir, changes nothing

Config source (one of):
  --config FILE                      a device config JSON file (re-read when it changes)
  --kubeconfig FILE --device NS/NAME the device's config Secret, read with the device kubeconfig;
                                     status is reported into the EdgeDevice

Options:
  --volumes-dir DIR    workload volumes (default /var/local/yggdrasil/device/volumes)
  --state-dir DIR      index and state files (default /var/lib/flotta-agent)
  --interval SECONDS   sync interval (default: the config's syncIntervalSeconds, 15); with file
                       events, failed files are retried after it
  --rescan SECONDS     with file events, a full scan this often as a safety net (default 600)
  --no-events          do not follow file events: a full scan every interval
  --max-watches N      directories watched at most; past it, a full scan every interval
                       (default 50000)
  --concurrency N      files uploaded at once (default 8)
  --part-size MIB      multipart part size in MiB, at least 5 (default 8)
  --queue-size N       parts of one file in flight (default 4)
  --max-rate RATE      bandwidth cap in bytes/s, with K, M or G suffix (default none)
  --log-level LEVEL    debug, info, warn or error (default info)
  --metrics-address HOST:PORT
                       serve Prometheus metrics at http://HOST:PORT/metrics (default off)
  --metrics-textfile FILE
                       write the same metrics to FILE after each pass, for node-exporter's
                       textfile collector (name it *.prom; default off)
  --token-renew-before SECONDS
                       renew the device token when less than this is left
                       (default: a third of its lifetime)
  -h, --help           this text
  --version            the agent's version

Memory stays below about concurrency x part size + 2 x (queue size + 1) x part size.`;

export type Command = "run" | "sync" | "status" | "explain" | "help" | "version";

export interface AgentOptions {
  command: Command;
  configFile?: string;
  kubeconfig?: string;
  device?: { namespace: string; name: string };
  volumesDir: string;
  stateDir: string;
  intervalSeconds?: number;
  events: boolean;
  rescanSeconds: number;
  maxWatches: number;
  concurrency: number;
  partSizeBytes: number;
  queueSize: number;
  maxBytesPerSecond?: number;
  tokenRenewBeforeSeconds?: number;
  logLevel: LogLevel;
  metricsAddress?: string;
  metricsTextfile?: string;
  /** status: list the files, confirmed at or after `since` (ms) when set. */
  files?: boolean;
  since?: number;
  /** explain: the file asked about. */
  explainPath?: string;
}

export type ParsedOptions = { ok: true; options: AgentOptions } | { ok: false; error: string };

const MiB = 1024 * 1024;

function integer(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | string {
  if (value === undefined) return NaN;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    return `--${name} must be a whole number from ${min} to ${max}, got "${value}"`;
  }
  return Number(value);
}

export function parseRate(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([KMG]?)(?:i?B)?(?:\/s)?$/i.exec(value.trim());
  if (!match) return undefined;
  const unit = { "": 1, K: 1024, M: MiB, G: 1024 * MiB }[
    match[2].toUpperCase() as "" | "K" | "M" | "G"
  ];
  const rate = Math.round(Number(match[1]) * unit);
  return rate > 0 ? rate : undefined;
}

export function parseOptions(argv: string[]): ParsedOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string" },
        kubeconfig: { type: "string" },
        device: { type: "string" },
        "volumes-dir": { type: "string" },
        "state-dir": { type: "string" },
        interval: { type: "string" },
        rescan: { type: "string" },
        "no-events": { type: "boolean" },
        "max-watches": { type: "string" },
        concurrency: { type: "string" },
        "part-size": { type: "string" },
        "queue-size": { type: "string" },
        "max-rate": { type: "string" },
        "log-level": { type: "string" },
        "token-renew-before": { type: "string" },
        "metrics-address": { type: "string" },
        "metrics-textfile": { type: "string" },
        files: { type: "boolean" },
        since: { type: "string" },
        once: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (err) {
    // Node adds a hint about "--" to unknown options; the first sentence is the message.
    return {
      ok: false,
      error: (err as Error).message.split("\n")[0].replace(/\. To specify .*$/, ""),
    };
  }
  const { values, positionals } = parsed;
  if (values.help) return { ok: true, options: defaults("help") };
  if (values.version) return { ok: true, options: defaults("version") };
  const explainPath = positionals[0] === "explain" ? positionals.splice(1, 1)[0] : undefined;
  if (positionals[0] === "explain" && explainPath === undefined)
    return { ok: false, error: "explain needs the PATH of a file" };
  if (positionals.length !== 1) {
    return {
      ok: false,
      error: positionals.length
        ? `one command expected, got "${positionals.join(" ")}"`
        : "a command is needed: run, sync --once, status or explain PATH",
    };
  }
  const command = positionals[0];
  if (!["run", "sync", "status", "explain"].includes(command)) {
    return { ok: false, error: `unknown command "${command}" (run, sync --once, status, explain)` };
  }
  if (values.once && command !== "sync") return { ok: false, error: "--once goes with sync" };
  if (values.files && command !== "status") return { ok: false, error: "--files goes with status" };
  if (values.since !== undefined && !values.files)
    return { ok: false, error: "--since goes with status --files" };

  const options = defaults(command as Command);
  if (explainPath !== undefined) options.explainPath = explainPath;
  const numbers: [keyof AgentOptions, string, number, number, number][] = [
    ["intervalSeconds", "interval", 1, 86400, 1],
    ["rescanSeconds", "rescan", 1, 86400, 1],
    ["maxWatches", "max-watches", 1, 1_000_000, 1],
    ["concurrency", "concurrency", 1, 256, 1],
    ["partSizeBytes", "part-size", 5, 5120, MiB],
    ["queueSize", "queue-size", 1, 64, 1],
    ["tokenRenewBeforeSeconds", "token-renew-before", 1, 31_536_000, 1],
  ];
  for (const [field, flag, min, max, scale] of numbers) {
    const value = values[flag as "interval"];
    if (value === undefined) continue;
    const n = integer(flag, value, min, max);
    if (typeof n === "string") return { ok: false, error: n };
    (options[field] as number) = n * scale;
  }
  if (values["max-rate"] !== undefined) {
    const rate = parseRate(values["max-rate"]);
    if (!rate)
      return {
        ok: false,
        error: `--max-rate must be bytes per second like 500K or 10M, got "${values["max-rate"]}"`,
      };
    options.maxBytesPerSecond = rate;
  }
  if (values["log-level"] !== undefined) {
    if (!LOG_LEVELS.includes(values["log-level"] as LogLevel)) {
      return { ok: false, error: `--log-level must be one of ${LOG_LEVELS.join(", ")}` };
    }
    options.logLevel = values["log-level"] as LogLevel;
  }
  const more = statusAndMetrics(values, options);
  if (more) return { ok: false, error: more };
  if (values["no-events"]) options.events = false;
  if (values["volumes-dir"]) options.volumesDir = values["volumes-dir"];
  if (values["state-dir"]) options.stateDir = values["state-dir"];

  if (command !== "status") {
    if (values.config && (values.kubeconfig || values.device)) {
      return { ok: false, error: "use either --config or --kubeconfig with --device, not both" };
    }
    if (values.config) {
      options.configFile = values.config;
    } else if (values.kubeconfig || values.device) {
      if (!values.kubeconfig || !values.device)
        return { ok: false, error: "--kubeconfig and --device go together" };
      const match = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(values.device);
      if (!match)
        return { ok: false, error: `--device must be NAMESPACE/NAME, got "${values.device}"` };
      options.kubeconfig = values.kubeconfig;
      options.device = { namespace: match[1], name: match[2] };
    } else {
      return {
        ok: false,
        error: "a config source is needed: --config FILE, or --kubeconfig FILE --device NS/NAME",
      };
    }
  }
  return { ok: true, options };
}

/** The status listing's and the metrics' options; an error line, or undefined when all is well. */
function statusAndMetrics(
  values: {
    files?: boolean;
    since?: string;
    "metrics-address"?: string;
    "metrics-textfile"?: string;
  },
  options: AgentOptions,
): string | undefined {
  if (values.files) options.files = true;
  if (values.since !== undefined) {
    const since = Date.parse(values.since);
    if (!/^\d{4}-\d{2}-\d{2}/.test(values.since) || Number.isNaN(since))
      return `--since must be an ISO 8601 time like 2026-11-28 or 2026-11-28T12:00:00Z, got "${values.since}"`;
    options.since = since;
  }
  const address = values["metrics-address"];
  if (address !== undefined) {
    const match = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(address);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535)
      return `--metrics-address must be HOST:PORT or PORT (1-65535), got "${address}"`;
    options.metricsAddress = address;
  }
  if (values["metrics-textfile"] !== undefined) {
    if (!values["metrics-textfile"]) return "--metrics-textfile needs a file name";
    options.metricsTextfile = values["metrics-textfile"];
  }
  return undefined;
}

function defaults(command: Command): AgentOptions {
  return {
    command,
    volumesDir: "/var/local/yggdrasil/device/volumes",
    stateDir: "/var/lib/flotta-agent",
    events: true,
    rescanSeconds: 600,
    maxWatches: 50_000,
    concurrency: 8,
    partSizeBytes: 8 * MiB,
    queueSize: 4,
    logLevel: "info",
  };
}

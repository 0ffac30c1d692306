/**
 * The agent's Prometheus metrics: counted from each pass's report, read from the index, and
 * rendered in the text exposition format. Served over HTTP (`--metrics-address`) and/or written
 * for node-exporter's textfile collector (`--metrics-textfile`). Rendering is pure.
 */
import { randomBytes } from "node:crypto";
import { chmod, rename, unlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { PassReport } from "./sync/engine";
import type { RetentionReport } from "./sync/retention";
import type { DestinationIndex } from "./sync/index-store";
import { filesWaiting } from "./status";

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: "counter" | "gauge" | "summary";
  samples: Map<string, { labels: Labels; value: number }>;
}

/** Every metric the agent exports: name, type, help (the README lists the same). */
export const AGENT_METRICS = {
  flotta_agent_files_sent_total: ["counter", "Files uploaded, by workload."],
  flotta_agent_bytes_sent_total: ["counter", "Bytes uploaded, by workload."],
  flotta_agent_bytes_resumed_total: [
    "counter",
    "Bytes of resumed multipart uploads the server already held (not sent again).",
  ],
  flotta_agent_upload_failures_total: ["counter", "Files whose upload failed, by workload."],
  flotta_agent_passes_total: ["counter", "Sync passes, by kind (scan, events) and result."],
  flotta_agent_pass_duration_seconds: ["summary", "Time sync passes took, by kind."],
  flotta_agent_files_waiting: [
    "gauge",
    "Files the last pass found to upload that are not in the bucket yet.",
  ],
  flotta_agent_read_problems: [
    "gauge",
    "Folders and files the last full scan could not read, and data paths it could not go through.",
  ],
  flotta_agent_last_success_timestamp_seconds: [
    "gauge",
    "When a pass last synced the workload without errors (Unix time).",
  ],
  flotta_agent_index_files: ["gauge", "Files the index knows to be in the bucket."],
  flotta_agent_retention_deleted_total: [
    "counter",
    "Local files deleted by retention once confirmed in the bucket, by workload.",
  ],
  flotta_agent_retention_folder_bytes: [
    "gauge",
    "Bytes in a data path with retention, after its last sweep, by workload and source.",
  ],
  flotta_agent_disk_pressure: [
    "gauge",
    "1 while a data path with a size cap is over it and nothing more may be deleted, else 0.",
  ],
  flotta_agent_oldest_waiting_seconds: [
    "gauge",
    "Age of the oldest file found and not uploaded yet (by its last change); 0 when none waits.",
  ],
  flotta_agent_index_bytes: ["gauge", "Size of the index on disk (snapshot and journal)."],
} as const;

export type MetricName = keyof typeof AGENT_METRICS;

const labelKey = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());

export class AgentMetrics {
  private readonly families = new Map<MetricName, Family>();

  constructor() {
    for (const [name, [type, help]] of Object.entries(AGENT_METRICS))
      this.families.set(name as MetricName, { type, help, samples: new Map() });
  }

  add(name: MetricName, labels: Labels, value: number): void {
    const samples = this.families.get(name)!.samples;
    const key = labelKey(labels);
    const sample = samples.get(key) ?? { labels, value: 0 };
    sample.value += value;
    samples.set(key, sample);
  }

  set(name: MetricName, labels: Labels, value: number): void {
    this.families.get(name)!.samples.set(labelKey(labels), { labels, value });
  }

  /** Counts one pass: what it sent and failed, how long it took, and what the index holds now. */
  observePass(
    report: PassReport,
    kind: "scan" | "events",
    seconds: number,
    index: DestinationIndex,
  ): void {
    for (const [workload, wr] of Object.entries(report.workloads)) {
      this.add("flotta_agent_files_sent_total", { workload }, wr.filesSent);
      this.add("flotta_agent_bytes_sent_total", { workload }, wr.bytesSent);
      this.add("flotta_agent_upload_failures_total", { workload }, wr.errors);
    }
    this.add("flotta_agent_bytes_resumed_total", {}, report.bytesReused);
    const result = report.aborted ? "aborted" : report.failures.length ? "incomplete" : "ok";
    this.add("flotta_agent_passes_total", { kind, result }, 1);
    this.add("flotta_agent_pass_duration_seconds", { kind }, seconds);
    this.set("flotta_agent_files_waiting", {}, filesWaiting(report));
    if (kind === "scan") this.set("flotta_agent_read_problems", {}, report.walkProblems.length);
    this.observeIndex(index);
  }

  /** What retention did after a pass. */
  observeRetention(report: RetentionReport): void {
    for (const d of report.deletions)
      this.add("flotta_agent_retention_deleted_total", { workload: d.workload }, 1);
    for (const p of report.paths)
      this.set(
        "flotta_agent_retention_folder_bytes",
        { workload: p.target.workload, source: p.target.source },
        p.bytes,
      );
    this.set("flotta_agent_disk_pressure", {}, report.paths.some(p => p.pressure) ? 1 : 0);
  }

  private observeIndex(index: DestinationIndex): void {
    for (const [workload, state] of Object.entries(index.workloads))
      if (state.lastSyncTime)
        this.set(
          "flotta_agent_last_success_timestamp_seconds",
          { workload },
          Date.parse(state.lastSyncTime) / 1000,
        );
    this.set("flotta_agent_index_files", {}, index.files.size);
    const { snapshotBytes, journalBytes } = index.persisted;
    this.set("flotta_agent_index_bytes", {}, snapshotBytes + journalBytes);
  }

  /** The text exposition format (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      for (const { labels, value } of family.samples.values()) {
        if (family.type === "summary") {
          const count = this.passCount(labels.kind);
          lines.push(`${name}_sum${formatLabels(labels)} ${value}`);
          lines.push(`${name}_count${formatLabels(labels)} ${count}`);
        } else lines.push(`${name}${formatLabels(labels)} ${value}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }

  private passCount(kind: string): number {
    let n = 0;
    for (const s of this.families.get("flotta_agent_passes_total")!.samples.values())
      if (s.labels.kind === kind) n += s.value;
    return n;
  }
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (!entries.length) return "";
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}

/** Serves GET /metrics at `address` (HOST:PORT, or PORT for every interface). */
export async function serveMetrics(metrics: AgentMetrics, address: string): Promise<Server> {
  const { host, port } = splitAddress(address);
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404).end("not found: GET /metrics\n");
      return;
    }
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    res.end(metrics.render());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return server;
}

export function splitAddress(address: string): { host?: string; port: number } {
  const at = address.lastIndexOf(":");
  const host = at > 0 ? address.slice(0, at).replace(/^\[(.*)\]$/, "$1") : undefined;
  return { host, port: Number(address.slice(at + 1)) };
}

/**
 * Writes the metrics for node-exporter's textfile collector: a temp file renamed over the old
 * one (the collector never reads half a file), mode 0644 (it runs as another user), no fsync
 * (metrics are rebuilt at the next pass; no flash wear for them).
 */
export async function writeTextfile(metrics: AgentMetrics, path: string): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    // "wx": a fresh file, never through a link; the mode set after (the unit's UMask=0077 would
    // leave 0600, which node_exporter, another user, cannot read).
    await writeFile(temp, metrics.render(), { flag: "wx" });
    await chmod(temp, 0o644);
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

import { test } from "uvu";
import * as assert from "uvu/assert";
import { AGENT_METRICS, AgentMetrics, splitAddress } from "../../agent/metrics";
import { emptyReport } from "../../agent/sync/engine";
import { emptyIndex } from "../../agent/sync/index-store";

test("a pass is counted per workload; the index and waiting files are gauges", () => {
  const metrics = new AgentMetrics();
  const index = emptyIndex({ endpoint: "http://s3", bucket: "b" });
  index.workloads.cam = { lastSyncTime: "2026-11-28T12:00:00.000Z" };
  const report = {
    ...emptyReport(),
    quiet: 2,
    failures: [{ key: "k", error: "e" }],
    workloads: { cam: { filesSent: 3, bytesSent: 300, errors: 1 } },
  };
  metrics.observePass(report, "scan", 1.5, index);
  metrics.observePass({ ...report, quiet: 0, failures: [] }, "events", 0.5, index);
  const text = metrics.render();
  for (const line of [
    'flotta_agent_files_sent_total{workload="cam"} 6',
    'flotta_agent_bytes_sent_total{workload="cam"} 600',
    'flotta_agent_upload_failures_total{workload="cam"} 2',
    'flotta_agent_passes_total{kind="scan",result="incomplete"} 1',
    'flotta_agent_passes_total{kind="events",result="ok"} 1',
    'flotta_agent_pass_duration_seconds_sum{kind="scan"} 1.5',
    'flotta_agent_pass_duration_seconds_count{kind="scan"} 1',
    "flotta_agent_files_waiting 0",
    `flotta_agent_last_success_timestamp_seconds{workload="cam"} ${Date.parse("2026-11-28T12:00:00Z") / 1000}`,
    "flotta_agent_index_files 0",
  ])
    assert.ok(text.split("\n").includes(line), `missing: ${line}\n${text}`);
  // Every metric has its HELP and TYPE.
  for (const name of Object.keys(AGENT_METRICS)) assert.match(text, `# TYPE ${name} `);
});

test("label values are escaped", () => {
  const metrics = new AgentMetrics();
  metrics.set("flotta_agent_files_waiting", { workload: 'a"b\\c\nd' }, 1);
  assert.match(metrics.render(), 'flotta_agent_files_waiting{workload="a\\"b\\\\c\\nd"} 1');
});

test("metrics addresses", () => {
  assert.equal(splitAddress("127.0.0.1:9100"), { host: "127.0.0.1", port: 9100 });
  assert.equal(splitAddress("9100"), { host: undefined, port: 9100 });
  assert.equal(splitAddress("[::1]:9100"), { host: "::1", port: 9100 });
});

test.run();

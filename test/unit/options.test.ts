import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseOptions, parseRate } from "../../agent/options";

const error = (argv: string[]) => {
  const parsed = parseOptions(argv);
  assert.not.ok(parsed.ok, `${argv.join(" ")} was accepted`);
  return parsed.ok ? "" : parsed.error;
};

test("defaults", () => {
  const parsed = parseOptions(["run", "--config", "c.json"]);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.equal(
    { ...parsed.options },
    {
      command: "run",
      configFile: "c.json",
      volumesDir: "/var/local/yggdrasil/device/volumes",
      stateDir: "/var/lib/flotta-agent",
      events: true,
      rescanSeconds: 600,
      maxWatches: 50_000,
      concurrency: 8,
      partSizeBytes: 8 * 1024 * 1024,
      queueSize: 4,
      logLevel: "info",
    },
  );
});

test("every option is read", () => {
  const parsed = parseOptions([
    "sync",
    "--once",
    "--kubeconfig",
    "k",
    "--device",
    "edge/cam-1",
    "--volumes-dir",
    "v",
    "--state-dir",
    "s",
    "--interval",
    "30",
    "--concurrency",
    "16",
    "--part-size",
    "16",
    "--queue-size",
    "2",
    "--max-rate",
    "10M",
    "--log-level",
    "debug",
    "--rescan",
    "120",
    "--no-events",
    "--max-watches",
    "500",
  ]);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  const o = parsed.options;
  assert.equal(o.device, { namespace: "edge", name: "cam-1" });
  assert.equal([o.command, o.kubeconfig, o.volumesDir, o.stateDir], ["sync", "k", "v", "s"]);
  assert.equal(
    [
      o.intervalSeconds,
      o.concurrency,
      o.partSizeBytes,
      o.queueSize,
      o.maxBytesPerSecond,
      o.logLevel,
    ],
    [30, 16, 16 * 1024 * 1024, 2, 10 * 1024 * 1024, "debug"],
  );
  assert.equal([o.rescanSeconds, o.events, o.maxWatches], [120, false, 500]);
});

test("bad input gets one clear line", () => {
  assert.match(error(["run", "--config", "c", "--bogus"]), /^Unknown option '--bogus'$/);
  assert.match(error([]), /a command is needed/);
  assert.match(error(["upload"]), /unknown command "upload"/);
  assert.match(error(["explain", "--config", "c"]), /explain needs the PATH of a file/);
  assert.match(error(["explain", "a", "b", "--config", "c"]), /one command expected/);
  assert.match(error(["run"]), /a config source is needed/);
  assert.match(
    error(["run", "--config", "c", "--kubeconfig", "k", "--device", "a/b"]),
    /either --config or --kubeconfig/,
  );
  assert.match(error(["run", "--kubeconfig", "k"]), /go together/);
  assert.match(
    error(["run", "--kubeconfig", "k", "--device", "cam-1"]),
    /--device must be NAMESPACE\/NAME/,
  );
  assert.match(
    error(["run", "--config", "c", "--part-size", "4"]),
    /--part-size must be a whole number from 5/,
  );
  assert.match(error(["run", "--config", "c", "--interval", "0"]), /--interval/);
  assert.match(error(["run", "--config", "c", "--max-rate", "fast"]), /--max-rate/);
  assert.match(
    error(["run", "--config", "c", "--log-level", "loud"]),
    /--log-level must be one of/,
  );
  assert.match(error(["run", "--once", "--config", "c"]), /--once goes with sync/);
});

test("help, version and status need no config source", () => {
  for (const argv of [["--help"], ["-h"], ["--version"], ["status"]])
    assert.ok(parseOptions(argv).ok, argv.join(" "));
});

test("metrics and the delivery record", () => {
  const run = parseOptions([
    "run",
    "--config",
    "c",
    "--metrics-address",
    "127.0.0.1:9101",
    "--metrics-textfile",
    "/run/flotta.prom",
  ]);
  assert.ok(run.ok && run.options.metricsAddress === "127.0.0.1:9101");
  assert.ok(run.ok && run.options.metricsTextfile === "/run/flotta.prom");
  assert.ok(parseOptions(["run", "--config", "c", "--metrics-address", "9101"]).ok);
  const files = parseOptions(["status", "--files", "--since", "2026-11-28T12:00:00Z"]);
  assert.ok(
    files.ok && files.options.files && files.options.since === Date.parse("2026-11-28T12:00:00Z"),
  );
  assert.match(
    error(["run", "--config", "c", "--metrics-address", "host:99999"]),
    /--metrics-address must be HOST:PORT/,
  );
  assert.match(error(["run", "--config", "c", "--files"]), /--files goes with status/);
  assert.match(error(["status", "--since", "2026-11-28"]), /--since goes with status --files/);
  assert.match(error(["status", "--files", "--since", "last week"]), /--since must be an ISO 8601/);
});

test("rates", () => {
  assert.is(parseRate("500K"), 500 * 1024);
  assert.is(parseRate("1.5M"), 1.5 * 1024 * 1024);
  assert.is(parseRate("2GB/s"), 2 * 1024 ** 3);
  assert.is(parseRate("0"), undefined);
  assert.is(parseRate("x"), undefined);
});

test("explain takes the path of one file and a config source", () => {
  const parsed = parseOptions(["explain", "/v/cam/data/a.csv", "--config", "c.json"]);
  assert.ok(parsed.ok);
  if (parsed.ok)
    assert.equal(
      [parsed.options.command, parsed.options.explainPath],
      ["explain", "/v/cam/data/a.csv"],
    );
});

test.run();

#!/usr/bin/env bash
# Fleet benchmark (outside the test command): the module before and after the cached reconcile,
# side by side in one run, on the local cluster (started here if it is not running).
#   1. BASELINE (a git ref, default: the commit before the fleet work) and this tree, each with
#      N devices x W workloads and an idle window of S seconds with one real agent;
#   2. this tree with LARGE devices x W workloads (no idle window).
# Each module runs as deployed (hack/module.sh start) at log level info, from its own tree (the
# baseline in a git worktree under the cache, sharing this tree's node_modules). Results go to
# bench/results/fleet-<date>.md and standard output. bench/fleet.ts measures one run.
#   bench/fleet.sh [--devices N] [--workloads W] [--idle-seconds S] [--large N] [--baseline REF]
#   (defaults: 1000, 50, 600, 10000, 5ba27fa^)
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

DEVICES=1000 WORKLOADS=50 IDLE=600 LARGE=10000 BASELINE=5ba27fa^
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) DEVICES=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --idle-seconds) IDLE=$2; shift 2 ;;
    --large) LARGE=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    *) die "usage: $0 [--devices N] [--workloads W] [--idle-seconds S] [--large N] [--baseline REF]" ;;
  esac
done

eval "$(hack/up.sh)"
export EDGE_MODULE_LOG_LEVEL=info LOG_LEVEL=silent AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
running module && die "the module is running: stop it first (hack/module.sh stop)"

base_commit=$(git rev-parse --short "$BASELINE")
base_tree=$EDGE_CACHE/fleet-baseline-$base_commit
if [ ! -d "$base_tree" ]; then
  git worktree add --detach "$base_tree" "$base_commit" >/dev/null
  ln -s "$PWD/node_modules" "$base_tree/node_modules"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# run LABEL TREE DEVICES IDLE: one fleet run with the module of TREE; its JSON in $out/LABEL.
run() {
  say "== $1: $3 devices x $WORKLOADS workloads, idle ${4}s"
  (cd "$2" && hack/module.sh start >&2)
  npx --no-install tsx bench/fleet.ts --devices "$3" --workloads "$WORKLOADS" \
    --idle-seconds "$4" --agent-root "$2" >"$out/$1" || echo '{}' >"$out/$1"
  (cd "$2" && hack/module.sh stop >&2)
  # The namespace's devices and their objects go before the next run starts.
  for ns in $(kubectl get namespaces -o name | grep '^namespace/fleet-' | cut -d/ -f2); do
    kubectl wait --for=delete "namespace/$ns" --timeout=600s >/dev/null 2>&1 || true
  done
}

run baseline "$base_tree" "$DEVICES" "$IDLE"
run current "$PWD" "$DEVICES" "$IDLE"
run large "$PWD" "$LARGE" 0

mkdir -p bench/results
report=bench/results/fleet-$(date +%F).md
node - "$out" "$base_commit" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes)" \
  "$DEVICES" "$WORKLOADS" "$IDLE" "$LARGE" >"$report" <<'NODE'
const fs = require("fs");
const [dir, base, head, devices, workloads, idle, large] = process.argv.slice(2);
const r = name => JSON.parse(fs.readFileSync(`${dir}/${name}`, "utf8"));
const [b, c, l] = ["baseline", "current", "large"].map(r);
const s = v => (v === undefined || v === null ? "not reached" : `${v.toFixed(1)} s`);
const n = v => (v === undefined || v === null ? "-" : String(v));
const lines = [
  `# Fleet benchmark, ${new Date().toISOString().slice(0, 10)}`,
  "",
  `bench/fleet.sh on this machine (${require("os").cpus().length} cores), local cluster, module as deployed at log level info.`,
  `Baseline ${base}, current ${head}. ${devices} devices x ${workloads} workloads (external storage); idle window ${idle} s with one agent running.`,
  "",
  `| | baseline (${devices}) | current (${devices}) | current (${large}) |`,
  "| --- | --- | --- | --- |",
  `| kubectl create of the devices | ${s(b.createSeconds)} | ${s(c.createSeconds)} | ${s(l.createSeconds)} |`,
  `| every config correct, after the create | ${s(b.configuredSeconds)} | ${s(c.configuredSeconds)} | ${s(l.configuredSeconds)} |`,
  `| one workload edit in every config | ${s(b.fanOutSeconds)} | ${s(c.fanOutSeconds)} | ${s(l.fanOutSeconds)} |`,
  `| module RSS after configuring / peak | ${n(b.rssMiB)} / ${n(b.peakRssMiB)} MiB | ${n(c.rssMiB)} / ${n(c.peakRssMiB)} MiB | ${n(l.rssMiB)} / ${n(l.peakRssMiB)} MiB |`,
  `| idle ${idle} s: module requests (audit log) | ${n(b.idle?.module)} | ${n(c.idle?.module)} | - |`,
  `| idle ${idle} s: one agent's requests (audit log) | ${n(b.idle?.agent)} | ${n(c.idle?.agent)} | - |`,
  `| idle ${idle} s: apiserver_request_total, all clients | ${n(b.idle?.allClients)} | ${n(c.idle?.allClients)} | - |`,
  "",
  "Module requests while idle, by verb and resource:",
  "",
  `- baseline: ${JSON.stringify(b.idle?.moduleByVerb ?? {})}`,
  `- current: ${JSON.stringify(c.idle?.moduleByVerb ?? {})}`,
  "",
];
process.stdout.write(lines.join("\n"));
NODE
npx --no-install prettier --log-level warn --write "$report"
cat "$report"
say "wrote $report"

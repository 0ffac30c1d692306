#!/usr/bin/env bash
# Agent speed benchmark (outside the test command): flotta-agent (the packed bundle, as a device
# runs it) against rclone at its current release (built from the Go module proxy, cached) and
# aws-cli, side by side in one run, on the local S3 server (hack/up.sh), over HTTP and HTTPS.
# Scenarios (a) 10,000 x 4 KiB, (b) one 2 GiB file, (c) 100 x 10 MiB, (d) idle passes over
# 100,000 files, (e) file close -> object readable, (f) a pass over 1,000,000 files with 10
# changed. Medians of --rounds runs, the tools' order rotating; `sync` before each run.
# bench/agent-speed.ts does the measuring and writes bench/results/agent-speed-<date>.md and
# bench/results/agent-speed-<date>.svg (the ratios chart the README shows).
#   bench/agent-speed.sh [--rounds R] [--only a,b,c,d,e,f]
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

ROUNDS=3 ONLY=a,b,c,d,e,f
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) die "usage: $0 [--rounds R] [--only a,b,c,d,e,f]" ;;
  esac
done

[ -x /usr/bin/time ] || apt-get install -y -qq time >&2
command -v aws >/dev/null 2>&1 || python3 -m pip install -q awscli >&2
[ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund >&2
bash hack/build-tools.sh rclone
npm run -s agent:pack >&2
# The S3 gateways start afresh with empty access logs: with a few hundred MB of access log
# behind it (a day of tests), versitygw spent several times the CPU per request.
for name in s3 s3-tls; do
  if running "$name"; then kill "$(cat "$RUN_DIR/$name.pid")"; while running "$name"; do sleep 0.2; done; fi
  [ -f "$LOG_DIR/$name-access.log" ] && mv "$LOG_DIR/$name-access.log" "$LOG_DIR/$name-access.log.1"
done
eval "$(hack/up.sh)"
. hack/versions.env
export BENCH_RCLONE_VERSION=$RCLONE_VERSION RCLONE_BIN=$BIN_DIR/rclone-$RCLONE_VERSION BENCH_DATA=$EDGE_CACHE/bench-data
export BENCH_ROUNDS=$ROUNDS BENCH_ONLY=$ONLY S3_RUN_DIR=$RUN_DIR
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec npx --no-install tsx bench/agent-speed.ts

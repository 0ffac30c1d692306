#!/usr/bin/env bash
# Side-by-side benchmark: flotta-agent (the packed bundle) against rclone and aws-cli, in one
# run, against the same local S3 server (hack/up.sh). Request counts come from the server's
# access log, time and peak memory from /usr/bin/time. Prints one table with ratios to the agent.
#   bench/compare.sh [--files N] [--big-mib M] [--rounds R]
#   (defaults: 10000 files of 4 KiB, one of 2048 MiB, 3 rounds)
# Runs here vary by up to 2x, so every case runs once per round, the tools' order rotating each
# round, and the table shows medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

FILES=10000
BIG_MIB=2048
ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --files) FILES=$2; shift 2 ;;
    --big-mib) BIG_MIB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) die "usage: $0 [--files N] [--big-mib M] [--rounds R]" ;;
  esac
done

# Tools: rclone from Debian, aws-cli from PyPI when not there, /usr/bin/time for peak RSS.
need() { command -v "$1" >/dev/null 2>&1 || { say "installing $2"; apt-get install -y -qq "$2" >&2; }; }
need rclone rclone
[ -x /usr/bin/time ] || apt-get install -y -qq time >&2
command -v aws >/dev/null 2>&1 || python3 -m pip install -q awscli >&2
[ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund >&2
npm run -s agent:pack >&2
version=$(node -p 'require("./package.json").version')
AGENT=dist/agent-pack/flotta-agent-$version/flotta-agent.js

eval "$(hack/up.sh)"
work=$(mktemp -d /tmp/edge-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
ACCESS_LOG=$EDGE_LOG_DIR/s3-access.log

say "making $FILES files of 4 KiB and one file of $BIG_MIB MiB in $work"
python3 - "$work/small/w/src" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(4096))
PY
mkdir -p "$work/big/w/src"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$work/big/w/src/big.bin"

export AWS_ACCESS_KEY_ID=$EDGE_S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$EDGE_S3_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=$EDGE_S3_REGION
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$EDGE_S3_ENDPOINT \
  RCLONE_CONFIG_B_ACCESS_KEY_ID=$EDGE_S3_ACCESS_KEY_ID RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$EDGE_S3_SECRET_ACCESS_KEY \
  RCLONE_CONFIG_B_FORCE_PATH_STYLE=true RCLONE_CONFIG_B_REGION=$EDGE_S3_REGION

# command_for TOOL DATASET BUCKET: sets CMD to one upload of $work/DATASET/w/src into BUCKET/t/.
command_for() {
  local tool=$1 set=$2 bucket=$3 src=$work/$2/w/src
  case "$tool" in
    flotta-agent)
      cat >"$work/$bucket.json" <<JSON
{"version":1,"device":{"namespace":"bench","name":"bench"},"storage":{"kind":"external","endpoint":"$EDGE_S3_ENDPOINT","bucket":"$bucket","region":"$EDGE_S3_REGION","accessKeyId":"$EDGE_S3_ACCESS_KEY_ID","secretAccessKey":"$EDGE_S3_SECRET_ACCESS_KEY"},"workloads":[{"name":"w","paths":[{"source":"src","target":"t"}]}]}
JSON
      CMD=(node "$AGENT" sync --once --log-level warn --config "$work/$bucket.json" --volumes-dir "$work/$set"
        --state-dir "$work/state-$bucket" --concurrency 16) ;;
    rclone)
      CMD=(env -u AWS_CA_BUNDLE rclone copy "$src" "B:$bucket/t" --transfers 16 --checkers 16 --s3-no-check-bucket
        --fast-list --s3-upload-concurrency 4 --s3-chunk-size 8M) ;;
    aws-cli)
      CMD=(aws --endpoint-url "$EDGE_S3_ENDPOINT" s3 sync "$src" "s3://$bucket/t" --only-show-errors) ;;
  esac
}

requests_for() { awk -v b="$1" '$2 == b' "$ACCESS_LOG" | wc -l; }
declare -A SECONDS_OF RSS_OF REQ_OF
# measure CASE TOOL DATASET BUCKET
measure() {
  local name=$1 tool=$2 before sec rss
  command_for "$tool" "$3" "$4"
  # Every tool starts with no dirty pages to write back (the data just made, the last tool's
  # objects): otherwise whoever runs first pays for the others' disk writes.
  sync
  before=$(requests_for "$4")
  /usr/bin/time -o "$work/time" -f '%e %M' "${CMD[@]}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; die "$tool failed"; }
  read -r sec rss <"$work/time"
  local requests=$(($(requests_for "$4") - before))
  SECONDS_OF[$name,$tool]+="$sec "
  RSS_OF[$name,$tool]+="$((rss / 1024)) "
  REQ_OF[$name,$tool]+="$requests "
  say "$name, $tool: ${sec}s, $((rss / 1024)) MB peak RSS, $requests S3 requests"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

tools=(flotta-agent rclone aws-cli)
for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order: round 1 starts with the agent, round 2 with rclone, ...
  order=("${tools[@]:$(((round - 1) % 3))}" "${tools[@]:0:$(((round - 1) % 3))}")
  for tool in "${order[@]}"; do
    b=bench-small-${tool}-$RANDOM
    aws --endpoint-url "$EDGE_S3_ENDPOINT" s3 mb "s3://$b" >/dev/null
    measure "first upload, $FILES x 4 KiB" "$tool" small "$b"
    measure "idle re-run, $FILES files" "$tool" small "$b"
    aws --endpoint-url "$EDGE_S3_ENDPOINT" s3 rb "s3://$b" --force >/dev/null
    b=bench-big-${tool}-$RANDOM
    aws --endpoint-url "$EDGE_S3_ENDPOINT" s3 mb "s3://$b" >/dev/null
    measure "one $BIG_MIB MiB file" "$tool" big "$b"
    aws --endpoint-url "$EDGE_S3_ENDPOINT" s3 rb "s3://$b" --force >/dev/null
  done
done

echo
echo "| case | tool | seconds (median of $ROUNDS) | all runs | peak RSS MB | S3 requests | time vs flotta-agent |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: |"
for name in "first upload, $FILES x 4 KiB" "idle re-run, $FILES files" "one $BIG_MIB MiB file"; do
  base=$(median <<<"${SECONDS_OF[$name,flotta-agent]}")
  for tool in "${tools[@]}"; do
    s=$(median <<<"${SECONDS_OF[$name,$tool]}")
    ratio=$(awk -v a="$s" -v b="$base" 'BEGIN { printf (b > 0 ? "%.2fx" : "-"), a / b }')
    echo "| $name | $tool | $s | ${SECONDS_OF[$name,$tool]% } | $(median <<<"${RSS_OF[$name,$tool]}") | $(median <<<"${REQ_OF[$name,$tool]}") | $ratio |"
  done
done
echo
echo "rclone: --transfers 16 --checkers 16 --fast-list, 8 MiB chunks x 4; aws-cli $(aws --version 2>&1 | cut -d' ' -f1) defaults;"
echo "flotta-agent: --concurrency 16, 8 MiB parts x 4. All on $(nproc) cores sharing the machine with the S3 server."

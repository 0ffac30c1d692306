# Shared settings for the hack/ scripts. Sourced, not run.
HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$HACK_DIR/versions.env"

EDGE_CACHE=${EDGE_CACHE:-$HOME/.cache/edge-upload}
BIN_DIR=$EDGE_CACHE/bin
# Runtime state (PKI, etcd data, S3 data, logs, pids) lives outside the repo too,
# so a clean clone and a running cluster never mix.
RUN_DIR=${EDGE_RUN_DIR:-$EDGE_CACHE/run}
LOG_DIR=$RUN_DIR/logs

ETCD_PORT=${ETCD_PORT:-2379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
APISERVER_PORT=${APISERVER_PORT:-6443}
S3_PORT=${S3_PORT:-7070}
S3_TLS_PORT=${S3_TLS_PORT:-7443}
# Test credentials of the local S3 server: known on purpose, loopback only.
S3_ACCESS_KEY=${S3_ACCESS_KEY:-edge-test-access}
S3_SECRET_KEY=${S3_SECRET_KEY:-edge-test-secret}
S3_REGION=${S3_REGION:-us-east-1}

KUBECONFIG_FILE=$RUN_DIR/admin.kubeconfig

say() { echo "[hack] $*" >&2; }
die() { echo "[hack] error: $*" >&2; exit 1; }

# port_busy PORT: true when something already listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds; on timeout show the log.
wait_for() {
  local name=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      echo "[hack] $name did not become ready in ${secs}s; last lines of $LOG_DIR/$name.log:" >&2
      tail -n 30 "$LOG_DIR/$name.log" >&2 2>/dev/null
      return 1
    fi
    if [ -f "$RUN_DIR/$name.pid" ] && ! kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
      echo "[hack] $name exited during start; last lines of $LOG_DIR/$name.log:" >&2
      tail -n 30 "$LOG_DIR/$name.log" >&2 2>/dev/null
      return 1
    fi
    sleep 0.2
  done
}

# running NAME: true when the pid file of NAME points at a live process.
running() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

# start_bg NAME CMD...: start CMD detached, its output in $LOG_DIR/NAME.log, pid in RUN_DIR.
start_bg() {
  local name=$1; shift
  mkdir -p "$LOG_DIR"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# need_apt COMMAND PACKAGE: install the Debian package PACKAGE when COMMAND is missing.
need_apt() {
  command -v "$1" >/dev/null 2>&1 && return 0
  need_apt_packages "$2"
}

# need_apt_packages PACKAGE...: install these Debian packages.
need_apt_packages() {
  say "installing Debian packages $*"
  mkdir -p "$EDGE_CACHE"
  # Another of our scripts may be installing at the same time (hack/test.sh builds the servers
  # beside its checks): wait for apt's and dpkg's locks instead of failing.
  local wait=(-o DPkg::Lock::Timeout=600 -o APT::Lock::Timeout=600)
  if [ ! -f "$EDGE_CACHE/.apt-updated" ]; then apt-get "${wait[@]}" update -qq >&2 && touch "$EDGE_CACHE/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y -qq "$@" >&2 || die "apt-get install $* failed"
}

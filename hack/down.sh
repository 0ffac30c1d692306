#!/usr/bin/env bash
# Stops what hack/up.sh started (only processes it recorded): all of them, or the NAMEs given
# (node, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, s3, s3-tls). With --purge it also deletes the
# cluster's and S3 server's data, so the next hack/up.sh starts empty. Built binaries stay.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

purge=false
names=()
for arg in "$@"; do
  case "$arg" in
    --purge) purge=true ;;
    node | etcd | kube-apiserver | kube-controller-manager | kube-scheduler | s3 | s3-tls) names+=("$arg") ;;
    *) die "usage: $0 [--purge] [node|etcd|kube-apiserver|kube-controller-manager|kube-scheduler|s3|s3-tls ...]" ;;
  esac
done
# Stop in dependency order, whatever order the names came in.
order=(node kube-scheduler kube-controller-manager kube-apiserver etcd s3-tls s3)
[ ${#names[@]} -gt 0 ] || names=("${order[@]}")

stop() {
  local name=$1 pidfile=$RUN_DIR/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $name"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

for name in "${order[@]}"; do
  [[ " ${names[*]} " == *" $name "* ]] || continue
  if [ "$name" = node ]; then "$HACK_DIR/node.sh" stop; else stop "$name"; fi
done
if $purge; then
  say "deleting cluster and S3 data under $RUN_DIR"
  rm -rf "$RUN_DIR/etcd" "$RUN_DIR/s3"
fi

#!/usr/bin/env bash
# Prints the host pid of the module in the first pod of ROLE (watcher or admission) on the local
# node: the process Pepr's controller forks to run the module (node /app/module-<hash>.js), as
# this machine sees it. For the benchmarks' memory readings.
#   hack/module-pid.sh watcher|admission
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE} PATH=$RUN_DIR/path:$PATH
case "${1:-}" in watcher | admission) ;; *) die "usage: $0 watcher|admission" ;; esac
uid=$(kubectl get pods -n pepr-system -l "pepr.dev/controller=$1" -o jsonpath='{.items[0].metadata.uid}')
[ -n "$uid" ] || die "no $1 pod"
for file in $(grep -l "/pod$uid/" /proc/[0-9]*/cgroup 2>/dev/null); do
  pid=${file#/proc/}; pid=${pid%/cgroup}
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '/app/module-'; then echo "$pid"; exit 0; fi
done
die "no module process in the $1 pod"

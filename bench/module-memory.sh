#!/usr/bin/env bash
# The module's memory with many Secrets it has no use for: starts the module as deployed
# (hack/module.sh: pods on the local node), reads the RSS of the module in its watcher and an
# admission pod, creates N unrelated
# Secrets of 8 KiB in 10 other namespaces, waits, reads them again (and the watcher's peak),
# then deletes the namespaces and stops the module. Needs the local cluster (eval "$(hack/up.sh)").
#   bench/module-memory.sh [--secrets N] [--settle SECONDS]   (defaults: 5000, 45)
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
export PATH=$RUN_DIR/path:$PATH

SECRETS=5000
SETTLE=45
while [ $# -gt 0 ]; do
  case "$1" in
    --secrets) SECRETS=$2; shift 2 ;;
    --settle) SETTLE=$2; shift 2 ;;
    *) die "usage: $0 [--secrets N] [--settle SECONDS]" ;;
  esac
done

rss() { awk -v f="$2" '$1 == f":" { print int($2 / 1024) }' "/proc/$(hack/module-pid.sh "$1")/status"; }
report() { # LABEL
  printf '%-34s watcher %4s MiB (peak %4s MiB)   admission %4s MiB\n' "$1" \
    "$(rss watcher VmRSS)" "$(rss watcher VmHWM)" "$(rss admission VmRSS)"
}

running module && die "the module is running: stop it first (hack/module.sh stop), so it starts fresh"
hack/module.sh start
trap 'hack/module.sh stop' EXIT
say "settling ${SETTLE}s"
sleep "$SETTLE"
report "no unrelated Secrets"

say "creating $SECRETS Secrets of 8 KiB in 10 namespaces"
per=$((SECRETS / 10))
for n in $(seq 1 10); do
  kubectl create namespace "memory-bench-$n" >/dev/null
  node -e '
    const [ns, count] = process.argv.slice(1);
    const items = [];
    for (let i = 0; i < Number(count); i++)
      items.push({ apiVersion: "v1", kind: "Secret", metadata: { name: `s-${i}`, namespace: ns },
        data: { blob: require("crypto").randomBytes(8192).toString("base64") } });
    process.stdout.write(JSON.stringify({ apiVersion: "v1", kind: "List", items }));
  ' "memory-bench-$n" "$per" | kubectl apply -f - >/dev/null
done
say "settling ${SETTLE}s"
sleep "$SETTLE"
report "$SECRETS unrelated Secrets of 8 KiB"

say "deleting the namespaces"
for n in $(seq 1 10); do kubectl delete namespace "memory-bench-$n" --wait=false >/dev/null; done

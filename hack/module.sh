#!/usr/bin/env bash
# Runs the Pepr module against the cluster that hack/up.sh started, with `pepr dev` (admission
# and watches in one local process, webhooks pointing at https://localhost:3000).
#   hack/module.sh run     foreground until Ctrl-C (npm run module:dev)
#   hack/module.sh start   in the background, log in $LOG_DIR/module.log; returns when serving
#   hack/module.sh stop    stops it with SIGINT, so pepr removes its webhooks
# Applies the CRDs first. Settings come from the environment (see README, "Module settings").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$HACK_DIR/.."
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
export PATH=$RUN_DIR/path:$PATH
uuid=$(node -p 'require("./package.json").pepr.uuid')

webhooks_gone() { ! kubectl get mutatingwebhookconfiguration "pepr-$uuid" >/dev/null 2>&1; }
# Ready when admission answers for real: a server-side dry run of the seed workload passes
# through the module's webhooks (pepr serves /healthz before its admission routes).
serving() {
  ! webhooks_gone &&
    kubectl create --dry-run=server -n default -o name -f manifests/samples/os-stats-workload.yaml >/dev/null 2>&1
}

case "${1:-run}" in
  run)
    kubectl apply -f manifests/crds/ >/dev/null
    exec npx --no-install pepr dev --host localhost --yes ;;
  start)
    running module && { say "module already running"; exit 0; }
    port_busy 3000 && die "port 3000 is in use by another process; pepr dev needs it"
    kubectl apply -f manifests/crds/ >/dev/null
    say "starting the module (pepr dev); log: $LOG_DIR/module.log"
    mkdir -p "$LOG_DIR"
    : >"$LOG_DIR/module.log"
    start_bg module npx --no-install pepr dev --host localhost --yes
    wait_for module 180 serving ;;
  stop)
    running module || exit 0
    pid=$(cat "$RUN_DIR/module.pid")
    say "stopping the module"
    kill -INT -- "-$pid" 2>/dev/null || true # the whole group: pepr dev, esbuild, the module
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$RUN_DIR/module.pid"
    if ! webhooks_gone; then
      # Left behind, they would block every EdgeWorkload change: remove them, and fail.
      kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration "pepr-$uuid" --ignore-not-found >/dev/null
      die "pepr dev left its webhooks behind (deleted now)"
    fi ;;
  *) die "usage: $0 run|start|stop" ;;
esac

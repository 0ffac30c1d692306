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
serving() { curl -sk -o /dev/null https://localhost:3000/healthz && ! webhooks_gone; }

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
    webhooks_gone || {
      say "pepr left its webhooks behind; deleting them"
      kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration "pepr-$uuid" --ignore-not-found >/dev/null
    } ;;
  *) die "usage: $0 run|start|stop" ;;
esac

#!/usr/bin/env bash
# Runs the Pepr module against the cluster that hack/up.sh started.
#   hack/module.sh start   the built module as `pepr deploy` runs it (hack/deploy-local.ts): under
#                          the ServiceAccount and scoped RBAC of dist/, admission and watcher as
#                          two processes; logs in $LOG_DIR/module.log (watcher) and
#                          module-admission.log. Builds first when dist/ is older than the code.
#   hack/module.sh stop    stops both and removes the webhook configurations (as an uninstall)
#   hack/module.sh run     `pepr dev` in the foreground, as cluster admin (npm run module:dev)
# Applies the CRDs first. EDGE_UPLOAD_* in the environment override the settings the manifest
# gives (README, "Module settings"), and EDGE_MODULE_LOG_LEVEL its log level.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$HACK_DIR/.."
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
export PATH=$RUN_DIR/path:$PATH
uuid=$(node -p 'require("./package.json").pepr.uuid')
DEPLOY_DIR=$RUN_DIR/module
PKI=$RUN_DIR/pki

webhooks_gone() { ! kubectl get mutatingwebhookconfiguration "pepr-$uuid" >/dev/null 2>&1; }
# Ready when admission answers for real: a server-side dry run of the seed workload passes
# through the module's webhooks (pepr serves /healthz before its admission routes).
serving() {
  ! webhooks_gone &&
    kubectl create --dry-run=server -n default -o name -f manifests/samples/os-stats-workload.yaml >/dev/null 2>&1
}
healthy() { curl -sfk "https://127.0.0.1:$1/healthz" >/dev/null; }

# The bundle is stale when any source it is built from is newer.
built() {
  local manifest=dist/pepr-module-$uuid.yaml
  [ -f "$manifest" ] && [ -f "dist/module-guard-$uuid.yaml" ] && [ -z "$(find pepr.ts package.json capabilities agent/config -newer "$manifest" -name '*.ts' -o -newer "$manifest" -name package.json | head -n1)" ]
}

stop_process() {
  local name=$1 pid
  running "$name" || { rm -f "$RUN_DIR/$name.pid"; return 0; }
  pid=$(cat "$RUN_DIR/$name.pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RUN_DIR/$name.pid"
}

start_process() { # NAME ROLE
  NODE_PATH=$PWD/node_modules start_bg "$1" node hack/run-module.mjs "$DEPLOY_DIR" "$2"
}

case "${1:-start}" in
  run)
    kubectl apply -f manifests/crds/ >/dev/null
    exec npx --no-install pepr dev --host localhost --yes ;;
  start)
    running module && { say "module already running"; exit 0; }
    port_busy 3000 && die "port 3000 is in use by another process; the module's admission needs it"
    port_busy 3001 && die "port 3001 is in use by another process; the module's watcher needs it"
    built || bash hack/build-module.sh >&2
    kubectl apply -f manifests/crds/ >/dev/null
    say "deploying the built module (scoped RBAC, admission and watcher processes); logs: $LOG_DIR/module.log, $LOG_DIR/module-admission.log"
    npx --no-install tsx hack/deploy-local.ts prepare "$DEPLOY_DIR" "$PKI" >/dev/null
    mkdir -p "$LOG_DIR"
    : >"$LOG_DIR/module.log"
    : >"$LOG_DIR/module-admission.log"
    start_process module-admission admission
    start_process module watcher
    wait_for module-admission 120 healthy 3000
    wait_for module 120 healthy 3001
    npx --no-install tsx hack/deploy-local.ts webhooks "$PKI" >/dev/null
    wait_for module-admission 60 serving ;;
  stop)
    running module || running module-admission || exit 0
    say "stopping the module"
    npx --no-install tsx hack/deploy-local.ts undeploy >/dev/null
    stop_process module
    stop_process module-admission
    webhooks_gone || die "the module's webhook configurations are still there" ;;
  *) die "usage: $0 start|stop|run" ;;
esac

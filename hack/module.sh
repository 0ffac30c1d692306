#!/usr/bin/env bash
# Runs the Pepr module against the cluster that hack/up.sh started.
#   hack/module.sh start   deploys the built module as `pepr deploy` does (hack/module-deploy.ts):
#                          the manifest of dist/ with the controller image built here
#                          (hack/module-image.sh, imported into the local node's containerd), so
#                          the admission and watcher Deployments run as pods on the local node,
#                          under their ServiceAccount, scoped RBAC and guard, behind their Services.
#                          Waits until both roll out and admission answers through the webhook.
#                          Pod logs are followed into $LOG_DIR/module.log (watcher) and
#                          module-admission.log. Builds first when dist/ is older than the code.
#   hack/module.sh stop    deletes the webhook configurations and the Deployments (as an
#                          uninstall) and waits until the pods are gone
#   hack/module.sh run     `pepr dev` in the foreground, as cluster admin (npm run module:dev)
# Applies the CRDs first. EDGE_UPLOAD_* in the environment override the settings the manifest
# gives (README, "Module settings"), and EDGE_MODULE_LOG_LEVEL its log level.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$HACK_DIR/.."
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
export PATH=$RUN_DIR/path:$PATH
uuid=$(node -p 'require("./package.json").pepr.uuid')
NS=pepr-system
DEPLOYMENTS=("pepr-$uuid" "pepr-$uuid-watcher")

webhooks_gone() { ! kubectl get mutatingwebhookconfiguration "pepr-$uuid" >/dev/null 2>&1; }
# Ready when admission answers for real: a server-side dry run of the seed workload passes
# through the module's webhooks (pepr serves /healthz before its admission routes).
serving() {
  ! webhooks_gone &&
    kubectl create --dry-run=server -n default -o name -f manifests/samples/os-stats-workload.yaml >/dev/null 2>&1
}

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

pods_gone() { [ -z "$(kubectl get pods -n "$NS" -l pepr.dev/controller -o name 2>/dev/null)" ]; }

rollout() {
  local d
  for d in "${DEPLOYMENTS[@]}"; do
    kubectl rollout status -n "$NS" "deployment/$d" --timeout=180s >&2 && continue
    kubectl get pods -n "$NS" -o wide >&2
    kubectl describe pods -n "$NS" -l pepr.dev/controller | tail -n 30 >&2
    die "deployment/$d did not roll out"
  done
}

case "${1:-start}" in
  run)
    kubectl apply -f manifests/crds/ >/dev/null
    exec npx --no-install pepr dev --host localhost --yes ;;
  start)
    running module && { say "module already running"; exit 0; }
    running node || die "the local node is not running: start the cluster first (hack/up.sh)"
    built || bash hack/build-module.sh >&2
    kubectl apply -f manifests/crds/ >/dev/null
    read -r image archive < <(bash hack/module-image.sh)
    bash hack/node.sh import "$archive"
    say "deploying the built module ($image): admission and watcher pods; logs: $LOG_DIR/module.log, $LOG_DIR/module-admission.log"
    mkdir -p "$LOG_DIR"
    : >"$LOG_DIR/module.log"
    : >"$LOG_DIR/module-admission.log"
    start_bg module node hack/pod-logs.mjs "$RUN_DIR/node/pod-logs" "${NS}_pepr-$uuid-" "$LOG_DIR"
    npx --no-install tsx hack/module-deploy.ts apply "$image" >/dev/null
    rollout
    wait_for module-admission 60 serving ;;
  stop)
    running module || [ -n "$(kubectl get deployment -n "$NS" -o name 2>/dev/null)" ] || exit 0
    say "stopping the module"
    npx --no-install tsx hack/module-deploy.ts undeploy >/dev/null
    wait_for module 60 pods_gone
    stop_process module
    webhooks_gone || die "the module's webhook configurations are still there" ;;
  *) die "usage: $0 start|stop|run" ;;
esac

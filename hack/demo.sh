#!/usr/bin/env bash
# npm run demo [-- --exit]: the main job end to end on the local cluster and S3 server.
# Installs what it needs, starts the cluster, the S3 server, the module and the test OBC
# provisioner, then tells the story (hack/demo.ts). Without --exit it leaves everything running
# and says how to stop it; with --exit it stops all it started and exits 0 only if every step
# was seen to work.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

exit_after=false
case "${1:-}" in
  "") ;;
  --exit) exit_after=true ;;
  *) die "usage: npm run demo [-- --exit]" ;;
esac

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> Installing npm packages (npm ci)"
  npm ci --no-audit --no-fund >/dev/null
fi
started=()
for name in etcd kube-apiserver kube-controller-manager kube-scheduler node s3 s3-tls module obc-provisioner; do
  running "$name" || started+=("$name")
done
echo "==> Starting the local Kubernetes cluster (API server and a node), S3 server, the module (as pods) and the test OBC provisioner"
echo "    (the first run builds the servers from source: several minutes)"
eval "$(hack/up.sh)"
# The test OBC provisioner writes an in-cluster host, as NooBaa does: devices reach claim
# buckets through the endpoint this module setting names.
hack/obc-provisioner.sh start # first: it serves the claim API the module lists at start
EDGE_UPLOAD_OBC_ENDPOINT=${EDGE_UPLOAD_OBC_ENDPOINT:-$EDGE_S3_ENDPOINT} hack/module.sh start
echo "==> Packing the agent for the device: npm run agent:pack"
npm run -s agent:pack

export DEMO_DIR=$RUN_DIR/demo AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
rc=0
npx --no-install tsx hack/demo.ts || rc=$?

stop_agent() {
  [ -f "$DEMO_DIR/agent.pid" ] || return 0
  kill "$(cat "$DEMO_DIR/agent.pid")" 2>/dev/null || true
  rm -f "$DEMO_DIR/agent.pid"
}
if $exit_after; then
  echo
  echo "==> Tearing down what the demo started"
  stop_agent
  kubectl delete namespace edge-demo --wait=false >/dev/null 2>&1 || true
  [[ " ${started[*]} " == *" obc-provisioner "* ]] && hack/obc-provisioner.sh stop
  [[ " ${started[*]} " == *" module "* ]] && hack/module.sh stop
  services=()
  for name in "${started[@]}"; do [[ $name == module || $name == obc-provisioner ]] || services+=("$name"); done
  [ ${#services[@]} -eq 0 ] || hack/down.sh "${services[@]}"
  if [ "$rc" -eq 0 ]; then echo "Demo passed."; else echo "Demo FAILED (exit $rc)."; fi
  exit "$rc"
fi

cat <<TXT

Left running, to look around (eval "\$(hack/up.sh)" sets KUBECONFIG and the S3 variables):
  the agent          pid $(cat "$DEMO_DIR/agent.pid" 2>/dev/null || echo "?"), log $DEMO_DIR/agent.log
  the device's files $DEMO_DIR/device/volumes/os-stats/stats   (write more; they are uploaded)
  the module         kubectl get pods -n pepr-system -o wide; log $LOG_DIR/module.log
  kubectl get edgedevices,edgeworkloads,objectbucketclaims -n edge-demo
To stop everything:
  kill \$(cat $DEMO_DIR/agent.pid); hack/obc-provisioner.sh stop; hack/module.sh stop; hack/down.sh
TXT
exit "$rc"

#!/usr/bin/env bash
# Mints a kubeconfig for one device (npm run device-kubeconfig -- NAMESPACE/DEVICE [options]):
# a TokenRequest token for the device's ServiceAccount (made by the module), the current
# cluster's server and CA. The device can read its own config Secret and patch its own
# EdgeDevice status, nothing else. Deleting the device (or its ServiceAccount) revokes it.
#   --duration D   token lifetime (default 8760h; the API server may cap it lower)
#   --output FILE  write there with mode 0600 (default: standard output)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
[ -x "$RUN_DIR/path/kubectl" ] && export PATH=$RUN_DIR/path:$PATH

target=${1:-}
[[ "$target" =~ ^([a-z0-9-]+)/([a-z0-9.-]+)$ ]] || die "usage: $0 NAMESPACE/DEVICE [--duration 8760h] [--output FILE]"
namespace=${BASH_REMATCH[1]} device=${BASH_REMATCH[2]}
shift
duration=8760h output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done

sa="$device-data-upload-agent"
kubectl get edgedevice "$device" -n "$namespace" >/dev/null || die "no EdgeDevice $namespace/$device"
kubectl get serviceaccount "$sa" -n "$namespace" >/dev/null 2>&1 ||
  die "ServiceAccount $namespace/$sa does not exist yet: is the module running?"
token=$(kubectl create token "$sa" -n "$namespace" --duration "$duration")
cluster=$(kubectl config view --raw --minify -o json)

kubeconfig=$(TOKEN="$token" CLUSTER="$cluster" DEVICE="$device" NS="$namespace" node -e '
const c = JSON.parse(process.env.CLUSTER).clusters[0].cluster;
const fs = require("fs");
const ca = c["certificate-authority-data"] ?? (c["certificate-authority"] ? fs.readFileSync(c["certificate-authority"]).toString("base64") : undefined);
const cluster = { server: c.server, ...(ca ? { "certificate-authority-data": ca } : {}) };
process.stdout.write(JSON.stringify({
  apiVersion: "v1", kind: "Config",
  clusters: [{ name: "edge", cluster }],
  users: [{ name: process.env.DEVICE, user: { token: process.env.TOKEN } }],
  contexts: [{ name: "device", context: { cluster: "edge", user: process.env.DEVICE, namespace: process.env.NS } }],
  "current-context": "device",
}, null, 2) + "\n");')

if [ -n "$output" ]; then
  (umask 077 && printf '%s' "$kubeconfig" >"$output")
  say "wrote $output for $namespace/$device (token valid for up to $duration)"
else
  printf '%s' "$kubeconfig"
fi

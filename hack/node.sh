#!/usr/bin/env bash
# A real node for the local cluster: containerd and runc from Debian and the kubelet built by
# hack/build-tools.sh, in a mount and network namespace of their own (hack/node-inside.sh), so
# that nothing global on the machine changes: the kubelet's sysctls land on files bound over
# /proc/sys, its /var/log and /run are tmpfs, the pods' bridge and NAT rule are in the node's
# network namespace. Linked to the host by one veth pair (edge-host0, removed with the namespace)
# and a route to the pods' subnet through it; the API server (127.0.0.1 only) is reached through
# a forwarder on the host end of the link. Cgroups go under /edge-node in each hierarchy.
#   hack/node.sh start    starts it (after hack/up.sh's servers) and waits until the node is Ready
#   hack/node.sh stop     stops every process in the node's namespaces, removes its cgroups, link
#                         and forwarder, and deletes the Node object
#   hack/node.sh import ARCHIVE   imports an OCI image archive into the node's containerd
#   hack/node.sh ctr ARGS...      containerd's `ctr` on the node's images (namespace k8s.io)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$HACK_DIR/node-net.env"
NODE=$RUN_DIR/node
# The default umask, whatever the caller's: containerd makes the containers' root filesystems
# with it, and one of 077 leaves them unreadable to the pods' users.
umask 022
SOCK=$NODE/containerd.sock
PAUSE_VERSION=1
PAUSE_REF=localhost/edge-upload/pause:$PAUSE_VERSION
export KUBECONFIG=$KUBECONFIG_FILE PATH=$RUN_DIR/path:$PATH

node_ctr() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

install_packages() {
  need_apt containerd containerd
  need_apt runc runc
  need_apt iptables iptables
  need_apt socat socat
  [ -x /usr/lib/cni/bridge ] || need_apt_packages containernetworking-plugins
}

# The sandbox ("pause") image: a static program that sleeps until told to stop and reaps orphans.
pause_image() {
  local out=$EDGE_CACHE/images/pause-$PAUSE_VERSION.tar src=$EDGE_CACHE/src/pause-$PAUSE_VERSION
  [ -f "$out" ] && { echo "$out"; return; }
  rm -rf "$src" && mkdir -p "$src/rootfs"
  cat >"$src/main.go" <<'GO'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			if pid, _ := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 {
				break
			}
		}
	}
}
GO
  (cd "$src" && go mod init local/pause >/dev/null 2>&1 &&
    CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o rootfs/pause .)
  mkdir -p "$(dirname "$out")"
  "$HACK_DIR/oci-image.sh" "$src/rootfs" "$PAUSE_REF" "$out" '["/pause"]' 65535:65535
  echo "$out"
}

write_configs() {
  mkdir -p "$NODE/cni" "$NODE/kubelet/pki" "$NODE/pod-logs" "$NODE/containerd"
  cat >"$NODE/containerd.toml" <<TOML
version = 2
root = "$NODE/containerd/root"
state = "/run/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  # runc cannot lower oom_score_adj without CAP_SYS_RESOURCE, which this machine lacks
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni"
TOML
  cat >"$NODE/cni/10-edge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "edge", "plugins": [{"type": "bridge", "bridge": "cni0",
 "isGateway": true, "ipMasq": false, "ipam": {"type": "host-local", "dataDir": "$NODE/cni-ipam",
 "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
  cat >"$NODE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_NAME
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$SOCK
podLogsDir: $NODE/pod-logs
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $RUN_DIR/pki/ca.crt }
authorization: { mode: Webhook }
resolvConf: ""
hairpinMode: none
failSwapOn: false
# The disk of a test machine may be nearly full: no evictions, no image garbage collection.
evictionHard: { memory.available: "50Mi" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
YAML
  local token; token=$(sed -n "s/^\([^,]*\),system:node:$NODE_NAME,.*/\1/p" "$RUN_DIR/pki/tokens.csv")
  [ -n "$token" ] || die "no token for system:node:$NODE_NAME in $RUN_DIR/pki/tokens.csv (hack/pki.sh writes it)"
  (umask 077; cat >"$NODE/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{ name: local, cluster: { server: "https://$KUBERNETES_SERVICE_IP:443", certificate-authority: "$RUN_DIR/pki/ca.crt" } }]
users: [{ name: node, user: { token: "$token" } }]
contexts: [{ name: node, context: { cluster: local, user: node } }]
current-context: node
KC
  )
}

start_link() {
  local inside; inside=$(cat "$NODE/inside.pid")
  ip link add "$HOST_LINK" type veth peer name "$NODE_LINK" netns "$inside"
  ip addr add "$HOST_LINK_IP/30" dev "$HOST_LINK"
  ip link set "$HOST_LINK" up
  ip route add "$POD_SUBNET" via "$NODE_IP" dev "$HOST_LINK"
  start_bg node-forwarder socat "TCP-LISTEN:$APISERVER_PORT,bind=$HOST_LINK_IP,fork,reuseaddr" "TCP:127.0.0.1:$APISERVER_PORT"
}

import_archive() { # ARCHIVE: once per image (by name)
  local ref; ref=$(tar -xOf "$1" index.json | sed -n 's/.*"io.containerd.image.name":"\([^"]*\)".*/\1/p')
  node_ctr images ls -q | grep -qxF "$ref" && return 0
  node_ctr images import "$1" >/dev/null
}

node_ready() {
  [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

start() {
  running node && { say "node already running"; return 0; }
  running kube-apiserver || die "the API server is not running: start it first (hack/up.sh)"
  install_packages
  local pause; pause=$(pause_image)
  write_configs
  rm -f "$NODE/inside.pid"
  local dir
  for dir in /sys/fs/cgroup/*/; do mkdir -p "$dir$NODE_NAME"; done # the kubelet's cgroupRoot
  say "starting the node $NODE_NAME (containerd, kubelet $K8S_VERSION); logs: $LOG_DIR/kubelet.log, $LOG_DIR/containerd.log"
  start_bg node unshare --mount --net --propagation private --fork bash "$HACK_DIR/node-inside.sh" "$NODE"
  wait_for node 30 test -s "$NODE/inside.pid"
  readlink "/proc/$(cat "$NODE/inside.pid")/ns/mnt" >"$NODE/mnt-ns"
  start_link
  wait_for containerd 60 node_ctr version
  import_archive "$pause"
  local end=$((SECONDS + 180))
  until node_ready; do
    running node || { tail -n 30 "$LOG_DIR/kubelet.log" >&2; die "the node stopped during start (logs above)"; }
    [ $SECONDS -lt $end ] || { tail -n 30 "$LOG_DIR/kubelet.log" >&2; die "the node did not become Ready in 180s"; }
    sleep 0.5
  done
}

# The processes of the node: every process in its mount namespace.
node_pids() {
  local ns=$1 p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
  done
  return 0
}

remove_cgroups() {
  local dir
  for dir in /sys/fs/cgroup/*/"$NODE_NAME"; do
    [ -d "$dir" ] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

stop() {
  if [ -s "$NODE/mnt-ns" ]; then
    say "stopping the node $NODE_NAME"
    kubectl delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    local ns pids; ns=$(cat "$NODE/mnt-ns")
    if [ -n "$ns" ]; then
      # shellcheck disable=SC2046
      kill -TERM $(node_pids "$ns") 2>/dev/null || true
      for _ in $(seq 1 100); do pids=$(node_pids "$ns"); [ -z "$pids" ] && break; sleep 0.1; done
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
  fi
  local name
  for name in node node-forwarder; do
    running "$name" && kill "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null
    rm -f "$RUN_DIR/$name.pid"
  done
  ip link del "$HOST_LINK" 2>/dev/null || true
  for _ in $(seq 1 50); do remove_cgroups; ls -d /sys/fs/cgroup/*/"$NODE_NAME" >/dev/null 2>&1 || break; sleep 0.2; done
  rm -rf "$NODE/kubelet" "$NODE/cni-ipam" "$NODE/inside.pid" "$NODE/mnt-ns"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  import) import_archive "$2" ;;
  ctr) shift; node_ctr "$@" ;;
  *) die "usage: $0 start|stop|import ARCHIVE|ctr ARGS..." ;;
esac

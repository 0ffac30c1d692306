#!/usr/bin/env bash
# The node's own side, run by hack/node.sh under `unshare --mount --net`: in this mount and network
# namespace containerd and the kubelet change nothing of the host's. Not run by hand.
#   node-inside.sh NODE_DIR
# - /run, /var/log and /var/lib are fresh tmpfs here (the kubelet's /var/log/containers and
#   device-plugins socket, CNI's result cache, containerd's shim sockets), and the global sysctls the kubelet sets are files bound over their /proc entries;
# - the network is this namespace's: a veth (edge-node0, made by hack/node.sh) to the host, pods
#   on a bridge behind it, and the cluster's `kubernetes` Service address (10.0.0.1:443) forwarded
#   to the API server's forwarder on the host end (no kube-proxy).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/node-net.env"
NODE=$1

for dir in /run /var/log /var/lib; do mount -t tmpfs -o mode=755 tmpfs "$dir"; done
mkdir -p "$NODE/sysctl"
for key in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  file=$NODE/sysctl/${key//\//.}
  cat "/proc/sys/$key" >"$file"
  mount --bind "$file" "/proc/sys/$key"
done

echo "$BASHPID" >"$NODE/inside.pid"
for _ in $(seq 1 100); do ip link show "$NODE_LINK" >/dev/null 2>&1 && break; sleep 0.1; done
ip link set lo up
ip addr add "$NODE_IP/30" dev "$NODE_LINK"
ip link set "$NODE_LINK" up
ip route add default via "$HOST_LINK_IP"
echo 1 >/proc/sys/net/ipv4/ip_forward
for chain in OUTPUT PREROUTING; do
  iptables -t nat -A "$chain" -d "$KUBERNETES_SERVICE_IP/32" -p tcp --dport 443 \
    -j DNAT --to-destination "$HOST_LINK_IP:$APISERVER_PORT"
done

containerd --config "$NODE/containerd.toml" >>"$LOG_DIR/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 1 100); do [ -S "$NODE/containerd.sock" ] && break; sleep 0.1; done
"$BIN_DIR/kubelet-$K8S_VERSION" --config "$NODE/kubelet.yaml" --kubeconfig "$NODE/kubeconfig" \
  --root-dir "$NODE/kubelet" --cert-dir "$NODE/kubelet/pki" --hostname-override "$NODE_NAME" \
  --node-ip "$NODE_IP" >>"$LOG_DIR/kubelet.log" 2>&1 &
kubelet_pid=$!
# Either one ending ends the node: the other is stopped too.
trap 'kill $kubelet_pid $containerd_pid 2>/dev/null; wait' TERM INT EXIT
wait -n

#!/usr/bin/env bash
# Starts the local test cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and
# a node: containerd and a kubelet, hack/node.sh) and the S3 server (versitygw, plain HTTP and
# TLS) on 127.0.0.1, building them first if needed.
# Idempotent: whatever already runs is left alone. Prints shell `export` lines, so
#   eval "$(hack/up.sh)"
# sets up a shell. Progress goes to stderr; logs go to $LOG_DIR. Stop with hack/down.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$HACK_DIR/build-tools.sh"
"$HACK_DIR/pki.sh"
PKI=$RUN_DIR/pki
mkdir -p "$LOG_DIR" "$RUN_DIR/path"

# Unversioned names on a PATH directory, so people and tests run the kubectl that matches.
ln -sf "$BIN_DIR/kubectl-$K8S_VERSION" "$RUN_DIR/path/kubectl"
export PATH=$RUN_DIR/path:$PATH

# claim_port NAME PORT: fail clearly when a process we did not start holds PORT.
claim_port() {
  if port_busy "$2"; then
    die "port $2 (for $1) is in use by a process hack/up.sh did not start; stop it, or pick another port with the variable in hack/lib.sh"
  fi
}

ADMIN_TOKEN=$(cat "$PKI/admin.token")
API=https://127.0.0.1:$APISERVER_PORT

write_kubeconfig() (
  umask 077
  cat >"$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: edge-local
    cluster:
      server: $API
      certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
  - name: admin
    user:
      token: $ADMIN_TOKEN
contexts:
  - name: edge-local
    context: { cluster: edge-local, user: admin }
current-context: edge-local
KC
)

start_etcd() {
  running etcd && return 0
  claim_port etcd "$ETCD_PORT"; claim_port etcd "$ETCD_PEER_PORT"
  say "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
  start_bg etcd "$BIN_DIR/etcd-$ETCD_VERSION" --name default --data-dir "$RUN_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648
  wait_for etcd 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

# Requests of ServiceAccounts (the module's, in pepr-system, and the devices') are audited at
# Metadata level, never with bodies: hack/rbac-audit.ts compares what the module did with the
# rules it holds, and tests count what an idle agent asks.
write_audit_policy() {
  cat >"$RUN_DIR/audit-policy.yaml" <<POLICY
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
POLICY
}

start_apiserver() {
  running kube-apiserver && return 0
  write_audit_policy
  claim_port kube-apiserver "$APISERVER_PORT"
  say "starting kube-apiserver $K8S_VERSION on $API"
  start_bg kube-apiserver "$BIN_DIR/kube-apiserver-$K8S_VERSION" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$APISERVER_PORT" --cert-dir "$PKI" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --enable-aggregator-routing=true --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-max-token-expiration 8760h \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --profiling=false --enable-priority-and-fairness=false \
    --audit-policy-file "$RUN_DIR/audit-policy.yaml" --audit-log-path "$LOG_DIR/audit.log" \
    --audit-log-format json --audit-log-maxsize 200 --audit-log-maxbackup 1
  wait_for kube-apiserver 120 curl -sf --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$API/readyz"
}

start_controller_manager() {
  running kube-controller-manager && return 0
  say "starting kube-controller-manager $K8S_VERSION"
  start_bg kube-controller-manager "$BIN_DIR/kube-controller-manager-$K8S_VERSION" \
    --kubeconfig "$KUBECONFIG_FILE" --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
    --controllers namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller,deployment-controller,replicaset-controller,endpoints-controller,endpointslice-controller,pod-garbage-collector-controller,node-lifecycle-controller \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=false
  # The root CA publisher is the last controller to act on a new namespace: once its ConfigMap
  # is in "default", the controllers are running.
  wait_for kube-controller-manager 120 kubectl --kubeconfig "$KUBECONFIG_FILE" -n default get configmap kube-root-ca.crt
}

start_scheduler() {
  running kube-scheduler && return 0
  say "starting kube-scheduler $K8S_VERSION"
  start_bg kube-scheduler "$BIN_DIR/kube-scheduler-$K8S_VERSION" \
    --kubeconfig "$KUBECONFIG_FILE" --leader-elect=false --bind-address 127.0.0.1 --secure-port 0
}

# start_s3 NAME PORT [TLS flags]: one versitygw gateway; both share the same data directory.
# With --keep-alive, as S3 and the usual S3 servers do: versitygw otherwise answers every request
# with "Connection: close", and each client pays a TCP (and TLS) handshake per request.
start_s3() {
  local name=$1 port=$2; shift 2
  running "$name" && return 0
  claim_port "$name" "$port"
  mkdir -p "$RUN_DIR/s3/data" "$RUN_DIR/s3/meta"
  say "starting versitygw $VERSITYGW_VERSION ($name) on 127.0.0.1:$port"
  ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
    start_bg "$name" "$BIN_DIR/versitygw-$VERSITYGW_VERSION" --port "127.0.0.1:$port" --region "$S3_REGION" \
    --quiet --keep-alive --access-log "$LOG_DIR/$name-access.log" "$@" \
    posix --sidecar "$RUN_DIR/s3/meta" "$RUN_DIR/s3/data"
}

s3_answers() { # any HTTP status means the gateway is serving
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' "$@") || true
  [ "$code" != "000" ] && [ -n "$code" ]
}

start_etcd
start_apiserver
write_kubeconfig
start_controller_manager
start_scheduler
start_s3 s3 "$S3_PORT"
start_s3 s3-tls "$S3_TLS_PORT" --cert "$PKI/s3.crt" --key "$PKI/s3.key"
wait_for s3 30 s3_answers "http://127.0.0.1:$S3_PORT/"
wait_for s3-tls 30 s3_answers --cacert "$PKI/s3-ca.crt" "https://127.0.0.1:$S3_TLS_PORT/"
"$HACK_DIR/node.sh" start
say "ready: cluster at $API, S3 at http://127.0.0.1:$S3_PORT and https://127.0.0.1:$S3_TLS_PORT; logs in $LOG_DIR"

cat <<ENV
export PATH="$RUN_DIR/path:\$PATH"
export KUBECONFIG="$KUBECONFIG_FILE"
export EDGE_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export EDGE_S3_TLS_ENDPOINT="https://127.0.0.1:$S3_TLS_PORT"
export EDGE_S3_TLS_CA="$PKI/s3-ca.crt"
export EDGE_S3_REGION="$S3_REGION"
export EDGE_S3_ACCESS_KEY_ID="$S3_ACCESS_KEY"
export EDGE_S3_SECRET_ACCESS_KEY="$S3_SECRET_KEY"
export EDGE_LOG_DIR="$LOG_DIR"
export EDGE_VERSITYGW_BIN="$BIN_DIR/versitygw-$VERSITYGW_VERSION"
ENV

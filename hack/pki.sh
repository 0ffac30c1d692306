#!/usr/bin/env bash
# Makes, once, the keys and certificates of the local cluster and S3 server under $RUN_DIR/pki:
# a cluster CA with the API server's serving cert and kubelet client cert, the service-account
# signing key pair, the admin and node tokens, and a separate CA with the S3 server's TLS cert. Nothing here leaves the machine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKI=$RUN_DIR/pki
mkdir -p "$PKI" && chmod 700 "$PKI" && cd "$PKI"
umask 077

# ca NAME CN: a self-signed CA.
ca() {
  [ -f "$1.crt" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# serving NAME CA SANS: a server cert for SANS signed by CA.
serving() {
  [ -f "$1.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 3650 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "edge-upload test cluster CA"
serving apiserver ca "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
if [ ! -f sa.key ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi
[ -f admin.token ] || openssl rand -hex 24 >admin.token
[ -f tokens.csv ] || echo "$(cat admin.token),admin,admin-uid,system:masters" >tokens.csv
# The local node's kubelet (hack/node.sh), as the Node authorizer knows it.
grep -q ',system:node:edge-node,' tokens.csv ||
  echo "$(openssl rand -hex 24),system:node:edge-node,node-uid,system:nodes" >>tokens.csv

# client NAME CN O: a client cert signed by the cluster CA.
client() {
  [ -f "$1.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/O=$3/CN=$2" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
# The API server's identity towards kubelets (logs, exec).
client apiserver-kubelet-client kube-apiserver-kubelet-client system:masters


ca s3-ca "edge-upload test S3 CA"
serving s3 s3-ca "IP:127.0.0.1,DNS:localhost"

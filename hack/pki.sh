#!/usr/bin/env bash
# Makes, once, the keys and certificates of the local cluster and S3 server under $RUN_DIR/pki:
# a cluster CA with the API server's serving cert, the service-account signing key pair, the
# admin token, the locally run module's serving cert, and a separate CA with the S3 server's TLS cert. Nothing here leaves the machine.
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

# The module's admission server when hack/module.sh runs it outside a cluster.
serving module ca "IP:127.0.0.1,DNS:localhost"

ca s3-ca "edge-upload test S3 CA"
serving s3 s3-ca "IP:127.0.0.1,DNS:localhost"

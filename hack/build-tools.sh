#!/usr/bin/env bash
# Builds, once, the servers the tests and the demo run locally, from the Go module proxy:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl (k8s.io/kubernetes
# through a wrapper module), etcd and versitygw (and, for the benchmark, rclone). Binaries are cached as $EDGE_CACHE/bin/<name>-<version>;
# a binary already there is never rebuilt. Debian packages it needs are installed when missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$BIN_DIR" "$EDGE_CACHE/src" "$LOG_DIR"

need_apt openssl openssl
need_apt curl curl
need_apt systemd-analyze systemd
need_apt mkfifo coreutils
need_apt setpriv util-linux
# Kubernetes 1.36 needs Go 1.26; Debian's golang-go is older, so an older Go is a clear stop.
GO_MIN=1.26
command -v go >/dev/null 2>&1 || die "Go $GO_MIN or newer is needed to build the local servers; none is on PATH"
go_version=$(go env GOVERSION | sed 's/^go//')
[ "$(printf '%s\n%s\n' "$GO_MIN" "$go_version" | sort -V | head -n1)" = "$GO_MIN" ] ||
  die "Go $GO_MIN or newer is needed to build the local servers; found $go_version"

have() { [ -x "$BIN_DIR/$1" ]; }

# run_build NAME CMD...: run a build step with its output in a log; on failure show the tail.
run_build() {
  local name=$1; shift
  if ! "$@" >>"$LOG_DIR/build-$name.log" 2>&1; then
    echo "[hack] building $name failed; last lines of $LOG_DIR/build-$name.log:" >&2
    tail -n 40 "$LOG_DIR/build-$name.log" >&2
    exit 1
  fi
}

build_kubernetes() {
  local v=$K8S_VERSION minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl) p all=true
  for p in "${bins[@]}"; do have "$p-$v" || all=false; done
  $all && return 0
  say "building ${bins[*]} $v (cold: about 8-12 min on 2 cores)"
  local dir=$EDGE_CACHE/src/kubernetes-$v
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  run_build kubernetes go mod init local/k8sbins
  # k8s.io/kubernetes maps every staging module to ./staging/...; point each at its published
  # v0.<minor>.<patch> tag instead. The list is read from that release's own go.mod.
  local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@v$v from the Go module proxy"
  local args=() m
  for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*|\1|p' "$gomod"); do
    args+=(-replace "$m=$m@v0.${v#1.}")
  done
  [ ${#args[@]} -gt 20 ] || die "found only ${#args[@]} staging modules in $gomod"
  run_build kubernetes go mod edit -require="k8s.io/kubernetes@v$v" "${args[@]}"
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  run_build kubernetes go mod tidy -e
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  mkdir -p out
  run_build kubernetes go build -trimpath -ldflags "$ld" -o out/ "${bins[@]/#/k8s.io/kubernetes/cmd/}"
  for p in "${bins[@]}"; do mv "out/$p" "$BIN_DIR/$p-$v"; done
}

build_etcd() {
  local v=$ETCD_VERSION
  have "etcd-$v" && return 0
  say "building etcd $v"
  local dir=$EDGE_CACHE/src/etcd-$v
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  run_build etcd go mod init local/etcd
  run_build etcd go get "go.etcd.io/etcd/server/v3@v$v"
  run_build etcd go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd-$v" go.etcd.io/etcd/server/v3
}

build_versitygw() {
  local v=$VERSITYGW_VERSION
  have "versitygw-$v" && return 0
  say "building versitygw $v"
  local dir=$EDGE_CACHE/src/versitygw-$v
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  run_build versitygw go mod init local/versitygw
  run_build versitygw go get "github.com/versity/versitygw/cmd/versitygw@v$v"
  run_build versitygw go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/versitygw-$v" github.com/versity/versitygw/cmd/versitygw
}

# rclone, for the benchmark only (bench/agent-speed.sh): its current release, as `go install` builds it.
build_rclone() {
  local v=$RCLONE_VERSION
  have "rclone-$v" && return 0
  say "building rclone $v (about 3 min on 2 cores)"
  local dir=$EDGE_CACHE/src/rclone-$v
  rm -rf "$dir" && mkdir -p "$dir"
  run_build rclone env GOBIN="$dir" go install "github.com/rclone/rclone@v$v"
  mv "$dir/rclone" "$BIN_DIR/rclone-$v"
}

case "${1:-all}" in
  all) build_etcd; build_versitygw; build_kubernetes ;;
  kubernetes|etcd|versitygw|rclone) "build_$1" ;;
  *) die "usage: $0 [all|kubernetes|etcd|versitygw|rclone]" ;;
esac

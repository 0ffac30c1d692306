#!/usr/bin/env bash
# npm run agent:pack: bundles the agent into one JavaScript file (no node_modules, no pepr) and
# packs it with its systemd unit, install script, README and the bundled packages' licence notices as dist/flotta-agent-<version>.tgz.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
name=flotta-agent-$version
stage=dist/agent-pack/$name
rm -rf dist/agent-pack && mkdir -p "$stage"
npx --no-install esbuild agent/cli.ts --bundle --platform=node --target=node20 --format=cjs \
  --minify --legal-comments=external --define:AGENT_VERSION="\"$version\"" \
  --banner:js='#!/usr/bin/env node' --outfile="$stage/flotta-agent.js" --log-level=warning
if grep -q -e 'kubernetes-fluent-client' -e 'pepr' "$stage/flotta-agent.js"; then
  echo "the agent bundle pulled in pepr or kubernetes-fluent-client: an import in agent/ is wrong" >&2
  exit 1
fi
chmod 0755 "$stage/flotta-agent.js"
# The stage already holds flotta-agent.js and its .LEGAL.txt (licences of what was bundled).
cp agent/package/flotta-agent.service agent/package/install.sh agent/package/README.md "$stage/"
tar -czf "dist/$name.tgz" -C dist/agent-pack "$name"
echo "dist/$name.tgz ($(du -h "dist/$name.tgz" | cut -f1); flotta-agent.js $(du -h "$stage/flotta-agent.js" | cut -f1))"

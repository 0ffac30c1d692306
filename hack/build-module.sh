#!/usr/bin/env bash
# Builds the Pepr module into dist/ and fails when it did not really build: `pepr build` exits 0
# even when tsc fails, so the bundle's presence (removed beforehand) is the proof.
set -euo pipefail
cd "$(dirname "$0")/.."
uuid=$(node -p 'require("./package.json").pepr.uuid')
bundle=dist/pepr-$uuid.js
rm -f "$bundle"
npx --no-install pepr build "$@"
if [ ! -s "$bundle" ]; then
  echo "pepr build produced no $bundle (a TypeScript error above stops it)" >&2
  exit 1
fi
npx --no-install tsx hack/module-guard.ts
echo "built $bundle, dist/pepr-module-$uuid.yaml and dist/module-guard-$uuid.yaml" >&2

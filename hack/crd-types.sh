#!/usr/bin/env bash
# Regenerates capabilities/generated/*.ts from the CRDs in manifests/crds with
# kubernetes-fluent-client (the copy pepr pins), then makes the types say what the API sends:
# timestamps are RFC 3339 strings (not Date) and enums are plain strings (string unions).
set -euo pipefail
cd "$(dirname "$0")/.."
out=capabilities/generated
rm -rf "$out" && mkdir -p "$out"
for crd in manifests/crds/*.yaml; do
  npx --no-install kubernetes-fluent-client crd "$crd" "$out" >/dev/null
done
# Timestamps arrive as RFC 3339 strings, and enums as plain strings: make the types say so.
node -e '
const fs = require("fs");
for (const file of process.argv.slice(1)) {
  let ts = fs.readFileSync(file, "utf8").replace(/(\??:\s*)Date;/g, "$1string;");
  ts = ts.replace(/export enum (\w+) \{([^}]*)\}/g, (_, name, body) => {
    const values = [...body.matchAll(/=\s*("[^"]*")/g)].map(m => m[1]);
    return `export type ${name} = ${values.join(" | ")};`;
  });
  fs.writeFileSync(file, ts);
}' "$out"/*.ts
npx --no-install prettier --log-level warn --write "$out"
ls "$out"

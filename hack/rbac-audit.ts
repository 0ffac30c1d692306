/**
 * Compares what the deployed module did (the API server's audit log of the module's
 * ServiceAccount, hack/up.sh) with the rules it holds (the ClusterRole that `pepr build` wrote).
 *
 *   tsx hack/rbac-audit.ts AUDIT_LOG [FROM_BYTE]
 *
 * Prints each (API group, resource, verb) the module holds or used, with how often it was used
 * and refused. Fails when a request was refused (a rule the module needs and lacks), or when a
 * rule of package.json's "pepr.rbac" was never used, unless the devices' Role grants it: the API
 * server lets the module create that Role only while it holds every rule in it.
 */
import { openSync, readFileSync, readSync, fstatSync } from "node:fs";
import yaml from "js-yaml";
import { deviceAccess } from "../capabilities/device-resources";

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface AuditEvent {
  verb: string;
  user: { username: string };
  userAgent?: string;
  objectRef?: { apiGroup?: string; resource?: string; subresource?: string };
  responseStatus?: { code?: number; message?: string };
  annotations?: Record<string, string>;
}

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
  pepr: { uuid: string; rbac: Rule[] };
};
const USER = `system:serviceaccount:pepr-system:pepr-${pkg.pepr.uuid}`;

const tuples = (rules: Rule[]) =>
  rules.flatMap(r =>
    (r.apiGroups ?? [""]).flatMap(g =>
      (r.resources ?? []).flatMap(res => r.verbs.map(v => `${g || "core"} ${res} ${v}`)),
    ),
  );

function readFrom(path: string, from: number): string {
  const fd = openSync(path, "r");
  const size = fstatSync(fd).size;
  const start = from <= size ? from : 0; // rotated meanwhile: read what there is
  const buffer = Buffer.alloc(size - start);
  readSync(fd, buffer, 0, buffer.length, start);
  return buffer.toString("utf8");
}

function used(text: string): Map<string, { ok: number; refused: number }> {
  const counts = new Map<string, { ok: number; refused: number }>();
  for (const line of text.split("\n")) {
    if (!line.includes(USER)) continue;
    const event = JSON.parse(line) as AuditEvent;
    if (event.user.username !== USER || !event.objectRef?.resource) continue;
    // kubectl with the module's token is a test playing attacker (guard.test.ts) or
    // a person with its token: only the module's own pods count.
    if (event.userAgent?.startsWith("kubectl/")) continue;
    const ref = event.objectRef;
    const resource = ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource!;
    const group = ref.apiGroup || "core";
    const count = (verb: string) => {
      const key = `${group} ${resource} ${verb}`;
      if (!counts.has(key)) counts.set(key, { ok: 0, refused: 0 });
      return counts.get(key)!;
    };
    // A server-side apply that creates the object is also checked for "create"; the audit log
    // records that check only in the message of its 403. A 403 can also be a terminating
    // namespace or an admission denial: only RBAC's verdicts count.
    const inner = /cannot (\w+) resource/.exec(event.responseStatus?.message ?? "");
    if (event.annotations?.["authorization.k8s.io/decision"] === "forbid")
      count(event.verb).refused++;
    else if (event.responseStatus?.code === 403 && inner) count(inner[1]).refused++;
    else {
      count(event.verb).ok++;
      if (event.verb === "patch" && event.responseStatus?.code === 201) count("create").ok++;
    }
  }
  return counts;
}

function main(): number {
  const [log, from] = process.argv.slice(2);
  if (!log) {
    process.stderr.write("usage: rbac-audit.ts AUDIT_LOG [FROM_BYTE]\n");
    return 2;
  }
  const manifest = yaml.loadAll(readFileSync(`dist/pepr-module-${pkg.pepr.uuid}.yaml`, "utf8")) as {
    kind: string;
    rules?: Rule[];
  }[];
  const held = new Set(tuples(manifest.find(d => d.kind === "ClusterRole")?.rules ?? []));
  const ours = new Set(tuples(pkg.pepr.rbac));
  const owner = { namespace: "n", name: "d", uid: "u" };
  const delegated = new Set(tuples(deviceAccess(owner).role.rules as Rule[]));
  const counts = used(readFrom(log, Number(from ?? 0)));

  const problems: string[] = [];
  const rows = [...new Set([...held, ...counts.keys()])].sort();
  for (const key of rows) {
    const { ok, refused } = counts.get(key) ?? { ok: 0, refused: 0 };
    let note = "";
    if (refused) {
      note = "REFUSED: a rule the module needs and lacks";
      problems.push(`${key}: refused ${refused} times`);
    } else if (!ok && ours.has(key) && !delegated.has(key)) {
      note = "NEVER USED: remove it from package.json pepr.rbac";
      problems.push(`${key}: held, never used`);
    } else if (!ok) {
      note = delegated.has(key) ? "held for the devices' Role" : "Pepr's own rule";
    }
    console.log(
      `${key.padEnd(58)} ${String(ok).padStart(6)} ${String(refused).padStart(4)}  ${note}`,
    );
  }
  if (problems.length) {
    console.error(`[rbac-audit] ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
    return 1;
  }
  console.error(`[rbac-audit] every request of ${USER} was allowed; every rule of ours was used`);
  return 0;
}

process.exit(main());

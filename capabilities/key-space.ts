/**
 * Where each device's objects land in its bucket, and when two writers can overwrite each other:
 * - a device's key prefix, from the template in spec.storage.keyPrefix;
 * - two workloads on one device whose targets overlap (the later one is left out);
 * - two devices sharing a bucket whose keys can collide (a condition on both).
 * Decisions are pure; SharedBuckets only remembers what each device's last reconcile wrote.
 */
import { relativePathProblem } from "../agent/config/device-config";
import { normalizeTarget, prefixedTarget } from "../agent/sync/keys";
import type { EdgeWorkload } from "./generated/edgeworkload-v1alpha1";

const PLACEHOLDER = /\{([^{}]*)\}/g;
const KNOWN = new Set(["namespace", "device"]);

/** The key prefix a template gives for one device, or why the template is unusable. */
export function expandKeyPrefix(
  template: string | undefined,
  device: { namespace: string; name: string },
): { prefix: string } | { problem: string } {
  if (!template) return { prefix: "" };
  const unknown = [...template.matchAll(PLACEHOLDER)].map(m => m[1]).filter(n => !KNOWN.has(n));
  if (unknown.length)
    return {
      problem: `spec.storage.keyPrefix: unknown placeholder {${unknown[0]}}; use {namespace} and {device}`,
    };
  const expanded = template.replace(PLACEHOLDER, (_, name: string) =>
    name === "namespace" ? device.namespace : device.name,
  );
  if (/[{}]/.test(expanded))
    return { problem: "spec.storage.keyPrefix: a { or } outside {namespace} and {device}" };
  const prefix = normalizeTarget(expanded);
  const problem = prefix ? relativePathProblem(prefix) : undefined;
  return problem ? { problem: `spec.storage.keyPrefix: ${problem}` } : { prefix };
}

/** True when keys under one prefix can be keys under the other (`a` and `a/b`, not `a` and `ab`). */
export function prefixesOverlap(a: string, b: string): boolean {
  const x = a ? `${normalizeTarget(a)}/` : "";
  const y = b ? `${normalizeTarget(b)}/` : "";
  return x.startsWith(y) || y.startsWith(x);
}

/** Oldest first (creation time, then name): the one that keeps a contested target. */
function byAge(a: EdgeWorkload, b: EdgeWorkload): number {
  const ta = a.metadata?.creationTimestamp ?? "";
  const tb = b.metadata?.creationTimestamp ?? "";
  if (ta !== tb) return ta < tb ? -1 : 1;
  return (a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1;
}

/**
 * Workloads on one device whose targets overlap an older workload's: each with what it collides
 * with. Within one workload, admission already refuses overlapping targets.
 */
export function overlappingWorkloads(
  workloads: EdgeWorkload[],
): { workload: EdgeWorkload; problems: string[] }[] {
  const kept: { name: string; target: string }[] = [];
  const refused: { workload: EdgeWorkload; problems: string[] }[] = [];
  for (const workload of [...workloads].sort(byAge)) {
    const name = workload.metadata?.name ?? "";
    const paths = workload.spec?.data?.paths ?? [];
    const problems = paths.flatMap((path, i) =>
      kept
        .filter(k => prefixesOverlap(k.target, path.target))
        .map(
          k =>
            `spec.data.paths[${i}].target: "${path.target}" overlaps the target "${k.target}" of EdgeWorkload ${k.name} on the same device, so their files could overwrite each other`,
        ),
    );
    if (problems.length) refused.push({ workload, problems });
    else kept.push(...paths.map(p => ({ name, target: p.target })));
  }
  return refused;
}

/** What one device writes: its bucket and the key prefixes of its data paths. */
export interface KeySpace {
  /** `<endpoint>/<bucket>`. */
  bucket: string;
  prefixes: string[];
}

/** Another device that writes keys under the same prefix of the same bucket. */
export interface Collision {
  device: string;
  mine: string;
  theirs: string;
}

/** The full key prefixes (`<keyPrefix>/<target>`) of a device's data paths. */
export function keyPrefixes(keyPrefix: string, targets: string[]): string[] {
  return targets.map(target => normalizeTarget(prefixedTarget(keyPrefix, target)));
}

/**
 * The key space each device's last reconcile wrote, to find devices that share a bucket. When a
 * device's collisions change, the devices on the other side are reconciled too (`affected`), so
 * both report it.
 */
export class SharedBuckets {
  private readonly spaces = new Map<string, KeySpace>();
  /** What each device's last update found: the devices it shares with, and collides with. */
  private readonly last = new Map<string, { sharing: string[]; colliding: string[] }>();

  /** Records a device's key space (undefined: none, or the device is gone). */
  update(
    device: string,
    space: KeySpace | undefined,
  ): { sharing: string[]; collisions: Collision[]; affected: string[] } {
    if (space) this.spaces.set(device, space);
    else this.spaces.delete(device);
    const others = space
      ? [...this.spaces].filter(([d, s]) => d !== device && s.bucket === space.bucket)
      : [];
    const collisions = others.flatMap(([other, s]) =>
      space!.prefixes.flatMap(mine =>
        s.prefixes
          .filter(theirs => prefixesOverlap(mine, theirs))
          .map(theirs => ({ device: other, mine, theirs })),
      ),
    );
    const now = {
      sharing: others.map(([d]) => d),
      colliding: [...new Set(collisions.map(c => c.device))],
    };
    // Another device is told when what it last saw of this one is no longer so.
    const stale = (other: string) => {
      const theirs = this.last.get(other);
      if (!theirs) return false; // gone, or not reconciled yet: it will see this one then
      return (
        theirs.sharing.includes(device) !== now.sharing.includes(other) ||
        theirs.colliding.includes(device) !== now.colliding.includes(other)
      );
    };
    const before = this.last.get(device) ?? { sharing: [], colliding: [] };
    const related = new Set([...before.sharing, ...now.sharing]);
    const affected = [...related].filter(stale);
    if (space) this.last.set(device, now);
    else this.last.delete(device);
    return { sharing: now.sharing, collisions, affected };
  }
}

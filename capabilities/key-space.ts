/**
 * Where each device's objects land in its bucket, and when two writers can overwrite each other:
 * - a device's key prefix, from the template in spec.storage.keyPrefix;
 * - two workloads on one device whose targets overlap (the later one is left out);
 * - two devices sharing a bucket whose keys can collide (a condition on both).
 * Decisions are pure; SharedBuckets only remembers what each device's last reconcile wrote.
 */
import { MAX_KEY_PREFIX, relativePathProblem } from "../agent/config/device-config";
import { normalizeTarget, parentPaths, prefixedTarget } from "../agent/sync/keys";
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
  if (prefix.length > MAX_KEY_PREFIX)
    return {
      problem: `spec.storage.keyPrefix: expands to ${prefix.length} characters for this device; at most ${MAX_KEY_PREFIX}`,
    };
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
  return targets.map(target => {
    const full = prefixedTarget(keyPrefix, target);
    const normal = normalizeTarget(full);
    return normal === full ? full : normal; // the workload's own string: one copy for a fleet
  });
}

/** Groups holding a key prefix: one id, or a set of them. */
type Holders = string | Set<string>;

const holderList = (h: Holders | undefined): Iterable<string> =>
  h === undefined ? [] : typeof h === "string" ? [h] : h;

function hold(map: Map<string, Holders>, key: string, id: string): void {
  const h = map.get(key);
  if (h === undefined) map.set(key, id);
  else if (typeof h === "string") {
    if (h !== id) map.set(key, new Set([h, id]));
  } else h.add(id);
}

function release(map: Map<string, Holders>, key: string, id: string): void {
  const h = map.get(key);
  if (h === id) map.delete(key);
  else if (typeof h === "object") {
    h.delete(id);
    if (h.size === 1) map.set(key, h.values().next().value as string);
  }
}

/**
 * Devices of one bucket with the same key prefixes (a fleet's devices selected by the same
 * workloads, without a key prefix): they collide with each other, and with the same groups.
 */
interface Group {
  id: string;
  prefixes: string[];
  /** Sorted by name. */
  members: string[];
  /** Members whose condition says they collide with nobody. */
  quiet: Set<string>;
}

/** The groups of one bucket, their prefixes indexed to find overlaps without looking at all. */
class BucketKeys {
  readonly groups = new Map<string, Group>();
  size = 0;
  /** Prefix -> the groups with exactly that prefix; and with a prefix strictly below it. */
  private readonly exact = new Map<string, Holders>();
  private readonly below = new Map<string, Holders>();

  join(device: string, prefixes: string[]): Group {
    const id = prefixes.join("\n");
    let group = this.groups.get(id);
    if (!group) {
      group = { id, prefixes, members: [], quiet: new Set() };
      this.groups.set(id, group);
      for (const p of prefixes) {
        hold(this.exact, p, id);
        for (const a of parentPaths(p)) hold(this.below, a, id);
      }
    }
    group.members.splice(sortedIndex(group.members, device), 0, device);
    group.quiet.add(device);
    this.size++;
    return group;
  }

  leave(device: string, group: Group): void {
    group.members.splice(sortedIndex(group.members, device), 1);
    group.quiet.delete(device);
    this.size--;
    if (group.members.length) return;
    this.groups.delete(group.id);
    for (const p of group.prefixes) {
      release(this.exact, p, group.id);
      for (const a of parentPaths(p)) release(this.below, a, group.id);
    }
  }

  /** The other groups with a prefix that overlaps one of `group`'s. */
  overlapping(group: Group): Group[] {
    const ids = new Set<string>();
    for (const p of group.prefixes) {
      for (const a of [...parentPaths(p), p])
        for (const id of holderList(this.exact.get(a))) ids.add(id);
      for (const id of holderList(this.below.get(p))) ids.add(id);
    }
    ids.delete(group.id);
    return [...ids].map(id => this.groups.get(id)!);
  }

  /** True when a member of `group` collides with another device. */
  collides(group: Group): boolean {
    return group.members.length > 1 || this.overlapping(group).length > 0;
  }
}

/** Where `name` is, or goes, in a sorted list. */
function sortedIndex(list: string[], name: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid] < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** How many colliding devices a condition names. */
const NAMED = 5;

/** What one device was last told (its conditions), and where its keys are. */
interface Member {
  bucket: string;
  group: Group;
  shares: boolean;
  collides: boolean;
}

export interface SharedFindings {
  /** Other devices upload to the same bucket. */
  sharing: boolean;
  /** How many of them can overwrite this device's keys, and the first of them by name. */
  colliding: number;
  collisions: Collision[];
  /** Devices whose KeysCollide condition this change flips: reconcile them too. */
  affected: string[];
}

/**
 * The key space each device's last reconcile wrote, to find devices that share a bucket and
 * whose keys can collide. Built for fleets: devices with the same prefixes form one group, and
 * groups are indexed by prefix, so a reconcile costs the groups it meets, not the fleet. When a
 * device's arrival, change or departure flips another device's condition (it starts or stops
 * sharing the bucket, or colliding), that device is `affected`; other changes to what a
 * condition names show at that device's next reconcile (at the latest, the resync).
 */
export class SharedBuckets {
  private readonly buckets = new Map<string, BucketKeys>();
  private readonly members = new Map<string, Member>();

  /** Records a device's key space (undefined: none, or the device is gone). */
  update(device: string, space: KeySpace | undefined): SharedFindings {
    const before = this.members.get(device);
    const prefixes = space && [...new Set(space.prefixes)].sort();
    const same =
      !!before &&
      !!space &&
      before.bucket === space.bucket &&
      before.group.id === prefixes!.join("\n");
    const affected = new Set<string>();
    if (before && !same) this.leave(device, before, affected);
    if (!space) {
      this.members.delete(device);
      return { sharing: false, colliding: 0, collisions: [], affected: [...affected] };
    }
    const keys = this.bucket(space.bucket);
    const group = same ? before!.group : keys.join(device, prefixes!);
    if (!same && keys.size === 2) this.tellOther(keys, device, m => !m.shares, affected);
    const others = keys.overlapping(group);
    const colliding = group.members.length - 1 + others.reduce((n, g) => n + g.members.length, 0);
    // Devices whose condition says they collide with nobody now collide with this one.
    for (const g of [group, ...others]) for (const d of g.quiet) if (d !== device) affected.add(d);
    if (colliding) group.quiet.delete(device);
    else group.quiet.add(device);
    const sharing = keys.size > 1;
    this.members.set(device, {
      bucket: space.bucket,
      group,
      shares: sharing,
      collides: colliding > 0,
    });
    return {
      sharing,
      colliding,
      collisions: named(device, group, others),
      affected: [...affected],
    };
  }

  private bucket(name: string): BucketKeys {
    let keys = this.buckets.get(name);
    if (!keys) this.buckets.set(name, (keys = new BucketKeys()));
    return keys;
  }

  /** Takes the device out of its group; who it leaves alone, or without a collision, is told. */
  private leave(device: string, before: Member, affected: Set<string>): void {
    const keys = this.buckets.get(before.bucket)!;
    const neighbours = keys.overlapping(before.group);
    keys.leave(device, before.group);
    for (const g of [before.group, ...neighbours])
      if (g.members.length === 1 && keys.groups.has(g.id) && !keys.collides(g)) {
        const [sole] = g.members;
        if (this.members.get(sole)?.collides) affected.add(sole);
      }
    if (keys.size === 1) this.tellOther(keys, device, m => m.shares, affected);
    if (keys.size === 0) this.buckets.delete(before.bucket);
  }

  /** With two devices or one left in a bucket: the other one, when `flips` says its view changes. */
  private tellOther(
    keys: BucketKeys,
    device: string,
    flips: (m: Member) => boolean,
    affected: Set<string>,
  ): void {
    for (const g of keys.groups.values())
      for (const d of g.members) {
        const m = this.members.get(d);
        if (d !== device && m && flips(m)) affected.add(d);
      }
  }
}

/** The first colliding devices by name, with one pair of overlapping prefixes each. */
function named(device: string, group: Group, others: Group[]): Collision[] {
  const candidates: { device: string; group: Group }[] = [];
  for (const g of [group, ...others]) {
    let taken = 0;
    for (const d of g.members) {
      if (taken === NAMED) break;
      if (d === device) continue;
      candidates.push({ device: d, group: g });
      taken++;
    }
  }
  candidates.sort((a, b) => (a.device < b.device ? -1 : 1));
  return candidates.slice(0, NAMED).map(({ device: d, group: g }) => {
    for (const mine of group.prefixes)
      for (const theirs of g.prefixes)
        if (prefixesOverlap(mine, theirs)) return { device: d, mine, theirs };
    return { device: d, mine: group.prefixes[0], theirs: g.prefixes[0] };
  });
}

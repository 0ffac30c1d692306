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
  return targets.map(target => {
    const full = prefixedTarget(keyPrefix, target);
    const normal = normalizeTarget(full);
    return normal === full ? full : normal; // the workload's own string: one copy for a fleet
  });
}

/** Devices holding a key prefix: one name, or a set of them (most prefixes have one). */
type Holders = string | Set<string>;

const holderList = (h: Holders | undefined): Iterable<string> =>
  h === undefined ? [] : typeof h === "string" ? [h] : h;

/** `a/b/c` gives `a`, `a/b` (its proper ancestors). */
function ancestors(prefix: string): string[] {
  const out: string[] = [];
  for (let at = prefix.indexOf("/"); at > 0; at = prefix.indexOf("/", at + 1))
    out.push(prefix.slice(0, at));
  return out;
}

/** The prefixes of one bucket, indexed to find overlaps without looking at every device. */
class BucketKeys {
  readonly members = new Set<string>();
  /** Prefix -> the devices with exactly that prefix. */
  private readonly exact = new Map<string, Holders>();
  /** Prefix -> the devices with a prefix strictly below it. */
  private readonly below = new Map<string, Holders>();

  add(device: string, prefixes: string[]): void {
    this.members.add(device);
    for (const p of prefixes) {
      hold(this.exact, p, device);
      for (const a of ancestors(p)) hold(this.below, a, device);
    }
  }

  remove(device: string, prefixes: string[]): void {
    this.members.delete(device);
    for (const p of prefixes) {
      release(this.exact, p, device);
      for (const a of ancestors(p)) release(this.below, a, device);
    }
  }

  /** Each other device with a prefix that overlaps `prefix` (a device may come more than once). */
  *overlapping(prefix: string, self: string): Generator<string> {
    for (const a of [...ancestors(prefix), prefix])
      for (const d of holderList(this.exact.get(a))) if (d !== self) yield d;
    for (const d of holderList(this.below.get(prefix))) if (d !== self) yield d;
  }
}

function hold(map: Map<string, Holders>, key: string, device: string): void {
  const h = map.get(key);
  if (h === undefined) map.set(key, device);
  else if (typeof h === "string") {
    if (h !== device) map.set(key, new Set([h, device]));
  } else h.add(device);
}

function release(map: Map<string, Holders>, key: string, device: string): void {
  const h = map.get(key);
  if (h === device) map.delete(key);
  else if (typeof h === "object") {
    h.delete(device);
    if (h.size === 1) map.set(key, h.values().next().value as string);
  }
}

/** How many colliding devices a condition names. */
const NAMED = 5;

/** What one device was last told (its conditions), and where its keys are. */
interface Member extends KeySpace {
  shares: boolean;
  collides: boolean;
}

/**
 * The key space each device's last reconcile wrote, to find devices that share a bucket and
 * whose keys can collide. Built for fleets: prefixes are indexed per bucket, so a device's
 * collisions cost the devices it collides with, not the whole fleet, and only a flag per device
 * is remembered. When a device's arrival, change or departure flips another device's condition
 * (it starts or stops sharing, or colliding), that device is `affected` and reconciled too; other
 * changes to what a condition names show at that device's next reconcile (at the latest the
 * resync).
 */
export class SharedBuckets {
  private readonly buckets = new Map<string, BucketKeys>();
  private readonly members = new Map<string, Member>();

  /** Records a device's key space (undefined: none, or the device is gone). */
  update(
    device: string,
    space: KeySpace | undefined,
  ): { sharing: boolean; colliding: number; collisions: Collision[]; affected: string[] } {
    const before = this.members.get(device);
    const same = !!before && !!space && sameSpace(before, space);
    const affected = new Set<string>();
    const oldColliders = before && !same ? this.colliders(device, before) : new Set<string>();
    if (before && !same) this.leave(device, before, affected);
    if (!space) {
      this.members.delete(device);
      for (const d of oldColliders) if (!this.collidesAtAll(d)) affected.add(d);
      return { sharing: false, colliding: 0, collisions: [], affected: [...affected] };
    }
    const keys = this.bucket(space.bucket);
    if (!same) this.join(device, space, keys, affected);
    const found = this.collisions(device, space, keys);
    for (const d of found.devices) if (!this.members.get(d)?.collides) affected.add(d);
    for (const d of oldColliders)
      if (!found.devices.has(d) && !this.collidesAtAll(d)) affected.add(d);
    this.members.set(device, {
      ...(same ? before : space), // the same prefixes: keep the strings already held
      shares: keys.members.size > 1,
      collides: found.devices.size > 0,
    });
    affected.delete(device);
    return {
      sharing: keys.members.size > 1,
      colliding: found.devices.size,
      collisions: found.named,
      affected: [...affected],
    };
  }

  private bucket(name: string): BucketKeys {
    let keys = this.buckets.get(name);
    if (!keys) this.buckets.set(name, (keys = new BucketKeys()));
    return keys;
  }

  private leave(device: string, before: KeySpace, affected: Set<string>): void {
    const keys = this.buckets.get(before.bucket)!;
    keys.remove(device, before.prefixes);
    if (keys.members.size === 0) this.buckets.delete(before.bucket);
    // The one left alone in the bucket no longer shares it.
    if (keys.members.size === 1) affected.add(keys.members.values().next().value as string);
  }

  private join(device: string, space: KeySpace, keys: BucketKeys, affected: Set<string>): void {
    keys.add(device, space.prefixes);
    // The one that was alone in the bucket now shares it.
    if (keys.members.size === 2)
      for (const d of keys.members)
        if (d !== device && !this.members.get(d)?.shares) affected.add(d);
  }

  private colliders(device: string, space: KeySpace): Set<string> {
    const keys = this.buckets.get(space.bucket);
    const out = new Set<string>();
    if (keys)
      for (const p of space.prefixes) for (const d of keys.overlapping(p, device)) out.add(d);
    return out;
  }

  /** The devices colliding with this one, and the first few by name with the prefixes. */
  private collisions(device: string, space: KeySpace, keys: BucketKeys) {
    const devices = new Set<string>();
    for (const p of space.prefixes) for (const d of keys.overlapping(p, device)) devices.add(d);
    const first = smallest(devices, NAMED);
    const named = first.flatMap(d => {
      const theirs = this.members.get(d)?.prefixes ?? [];
      for (const mine of space.prefixes)
        for (const t of theirs)
          if (prefixesOverlap(mine, t)) return [{ device: d, mine, theirs: t }];
      return [];
    });
    return { devices, named };
  }

  /** True when the device's keys overlap any other device's (stops at the first). */
  private collidesAtAll(device: string): boolean {
    const m = this.members.get(device);
    const keys = m && this.buckets.get(m.bucket);
    if (!m || !keys) return false;
    for (const p of m.prefixes) for (const _ of keys.overlapping(p, device)) return true;
    return false;
  }
}

/** The `n` smallest names, sorted, without sorting them all (a fleet may collide whole). */
function smallest(names: Iterable<string>, n: number): string[] {
  const out: string[] = [];
  for (const name of names) {
    if (out.length === n && name >= out[n - 1]) continue;
    let at = out.length;
    while (at > 0 && out[at - 1] > name) at--;
    out.splice(at, 0, name);
    if (out.length > n) out.pop();
  }
  return out;
}

function sameSpace(a: KeySpace, b: KeySpace): boolean {
  return (
    a.bucket === b.bucket &&
    a.prefixes.length === b.prefixes.length &&
    a.prefixes.every((p, i) => p === b.prefixes[i])
  );
}

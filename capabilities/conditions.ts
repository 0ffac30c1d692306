/** Status conditions the Kubernetes way: lastTransitionTime moves only when status changes. Pure. */
import type { Condition } from "./generated/edgedevice-v1alpha1";

export interface ConditionInput {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

export function mergeConditions(
  previous: Condition[] | undefined,
  next: ConditionInput[],
  generation: number | undefined,
  now: string,
): Condition[] {
  return next.map(c => {
    const old = previous?.find(p => p.type === c.type);
    return {
      ...c,
      message: c.message.slice(0, 32768),
      observedGeneration: generation,
      lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now,
    };
  });
}

/** The module's own part of an EdgeDevice status (the agent owns `dataUpload`). */
export interface ModuleStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  storage?: object;
  dataObc?: string;
}

/** A value with object keys sorted and empty (undefined or null) fields dropped. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined && v !== null) out[key] = canonical(v);
  }
  return out;
}

/**
 * True when two statuses say the same thing, whatever their key order (the API server's JSON
 * and ours differ) or the order of their conditions: then there is nothing to patch.
 */
export function sameModuleStatus(a: ModuleStatus, b: ModuleStatus): boolean {
  const key = (s: ModuleStatus) =>
    JSON.stringify(
      canonical({
        observedGeneration: s.observedGeneration,
        conditions: [...(s.conditions ?? [])].sort((x, y) => (x.type < y.type ? -1 : 1)),
        storage: s.storage,
        dataObc: s.dataObc,
      }),
    );
  return key(a) === key(b);
}

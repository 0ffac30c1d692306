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

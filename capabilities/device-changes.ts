/**
 * Which device events need a reconcile: only a change in what the module reads from a device
 * (its spec, through the generation; its labels; its deletion). The agent's status patches and
 * the module's own status writes change none of these, so they reconcile nothing. Pure.
 */
interface DeviceMeta {
  metadata?: {
    uid?: string;
    generation?: number;
    labels?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
}

export class DeviceChanges {
  private seen = new Map<string, string>();

  /** True the first time a device is seen, and whenever what the module reads changed. */
  changed(device: DeviceMeta): boolean {
    const meta = device.metadata ?? {};
    const labels = Object.entries(meta.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    const signature = JSON.stringify([meta.generation, labels, !!meta.deletionTimestamp]);
    if (this.seen.get(meta.uid ?? "") === signature) return false;
    this.seen.set(meta.uid ?? "", signature);
    return true;
  }

  forget(device: DeviceMeta): void {
    this.seen.delete(device.metadata?.uid ?? "");
  }
}

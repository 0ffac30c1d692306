/**
 * Which devices read which ConfigMaps and Secrets, learnt on each reconcile, so that a change
 * to one of them reconciles exactly the devices that use it (no API call per event).
 */
export class References {
  private byDevice = new Map<string, string[]>();
  private byObject = new Map<string, Set<string>>();

  private static id(kind: "ConfigMap" | "Secret", namespace: string, name: string): string {
    return `${kind}/${namespace}/${name}`;
  }

  /** Replaces what `deviceKey` (namespace/name) references. */
  record(
    deviceKey: string,
    namespace: string,
    refs: { configMaps: string[]; secrets: string[] },
  ): void {
    this.forget(deviceKey);
    const ids = [
      ...refs.configMaps.map(n => References.id("ConfigMap", namespace, n)),
      ...refs.secrets.map(n => References.id("Secret", namespace, n)),
    ];
    this.byDevice.set(deviceKey, ids);
    for (const id of ids) {
      if (!this.byObject.has(id)) this.byObject.set(id, new Set());
      this.byObject.get(id)!.add(deviceKey);
    }
  }

  forget(deviceKey: string): void {
    for (const id of this.byDevice.get(deviceKey) ?? []) {
      const devices = this.byObject.get(id);
      devices?.delete(deviceKey);
      if (devices?.size === 0) this.byObject.delete(id);
    }
    this.byDevice.delete(deviceKey);
  }

  devicesUsing(kind: "ConfigMap" | "Secret", namespace: string, name: string): string[] {
    return [...(this.byObject.get(References.id(kind, namespace, name)) ?? [])];
  }

  /** Every device that uses any object of the kind. */
  devicesUsingAny(kind: "ConfigMap" | "Secret"): string[] {
    const devices = new Set<string>();
    for (const [id, keys] of this.byObject)
      if (id.startsWith(`${kind}/`)) for (const key of keys) devices.add(key);
    return [...devices];
  }
}

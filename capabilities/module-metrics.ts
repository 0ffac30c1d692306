/**
 * The module's own metrics, served by Pepr's /metrics endpoint (its collector, which prefixes
 * names with `pepr_`): devices by readiness and storage kind, reconciles and their errors, and
 * the reconcile queue. Pepr's gauges only go up or down by a step, so each one keeps the value it
 * last set and moves by the difference.
 */
import type { MetricsCollectorInstance } from "pepr/dist/lib/telemetry/metrics";

/** Every metric the module adds (names without Pepr's `pepr_` prefix; the README lists them). */
export const MODULE_METRICS = {
  edge_devices: "EdgeDevices by readiness (Ready condition) and storage kind.",
  edge_reconciles_total: "Device reconciles run.",
  edge_reconcile_errors_total: "Device reconciles that failed (each is retried with backoff).",
  edge_queue_depth: "Devices waiting to be reconciled (for a worker, or to run again).",
  edge_queue_retrying: "Devices whose last reconcile failed, waiting to retry.",
} as const;

export interface DeviceLabels {
  ready: string;
  storage: string;
}

export class ModuleMetrics {
  private readonly devices = new Map<string, string>();
  private readonly gauges = new Map<string, number>();

  constructor(private readonly collector: MetricsCollectorInstance) {
    collector.addGauge("edge_devices", MODULE_METRICS.edge_devices, ["ready", "storage"]);
    collector.addCounter("edge_reconciles_total", MODULE_METRICS.edge_reconciles_total);
    collector.addCounter("edge_reconcile_errors_total", MODULE_METRICS.edge_reconcile_errors_total);
    collector.addGauge("edge_queue_depth", MODULE_METRICS.edge_queue_depth, []);
    collector.addGauge("edge_queue_retrying", MODULE_METRICS.edge_queue_retrying, []);
  }

  reconciled(ok: boolean): void {
    this.collector.incCounter("edge_reconciles_total");
    if (!ok) this.collector.incCounter("edge_reconcile_errors_total");
  }

  /** A device's readiness and storage now; undefined when it is gone. */
  device(key: string, labels: DeviceLabels | undefined): void {
    const before = this.devices.get(key);
    const now = labels && JSON.stringify([labels.ready, labels.storage]);
    if (before === now) return;
    if (before) {
      const [ready, storage] = JSON.parse(before) as string[];
      this.collector.incGauge("edge_devices", { ready, storage }, -1);
    }
    if (labels && now) {
      this.collector.incGauge("edge_devices", { ...labels }, 1);
      this.devices.set(key, now);
    } else this.devices.delete(key);
  }

  queue(depth: number, retrying: number): void {
    this.set("edge_queue_depth", depth);
    this.set("edge_queue_retrying", retrying);
  }

  private set(name: string, value: number): void {
    const delta = value - (this.gauges.get(name) ?? 0);
    if (!delta) return;
    this.collector.incGauge(name, {}, delta);
    this.gauges.set(name, value);
  }
}

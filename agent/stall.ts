/**
 * Stalls made visible: with the device's stallAfterSeconds set, a census (sync/census.ts) runs
 * every third of it (5 s to 5 minutes), on its own timer, whatever the passes do. It gives the
 * age of the oldest waiting file (metric `flotta_agent_oldest_waiting_seconds`), and status
 * says `stalled` once that age passes the threshold (the module turns it into the
 * UploadStalled condition).
 */
import type { DeviceConfig } from "./config/device-config";
import type { Waiting } from "./sync/census";

export interface StallFields {
  /** ISO time of the last change of the oldest waiting file, or null when none waits. */
  oldestWaitingTime: string | null;
  stalled: string | null;
}

/** What status says, from a census at `now` and the threshold. Pure. */
export function stallFields(
  waiting: Waiting | undefined,
  thresholdSeconds: number | undefined,
  now: number,
): StallFields {
  const oldest = waiting?.oldestChangeMs;
  if (!thresholdSeconds || oldest === undefined) return { oldestWaitingTime: null, stalled: null };
  const time = new Date(Math.floor(oldest / 1000) * 1000).toISOString();
  const stalled =
    now - oldest > thresholdSeconds * 1000
      ? `the oldest of ${waiting!.files} waiting files changed at ${time}, over ${thresholdSeconds} s ago, and is not in the bucket`
      : null;
  return { oldestWaitingTime: time, stalled };
}

/** How often the census runs for a threshold. */
export const censusPeriodMs = (thresholdSeconds: number) =>
  Math.min(300_000, Math.max(5_000, (thresholdSeconds * 1000) / 3));

export class StallWatch {
  private timer?: NodeJS.Timeout;
  private running = false;
  waiting?: Waiting;
  threshold?: number;
  /** The fields the last `changed` was told of. */
  private told = JSON.stringify(stallFields(undefined, undefined, 0));

  constructor(
    private readonly config: () => DeviceConfig | undefined,
    /** Counts the waiting files (undefined when no destination is open). */
    private readonly count: (config: DeviceConfig) => Promise<Waiting | undefined>,
    /** Told after each census whose fields differ from the last. */
    private readonly changed: () => Promise<void>,
  ) {}

  get fields(): StallFields {
    return stallFields(this.waiting, this.threshold, Date.now());
  }

  start(): void {
    const threshold = this.config()?.stallAfterSeconds;
    this.timer = setTimeout(() => void this.tick(), threshold ? censusPeriodMs(threshold) : 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const config = this.config();
      this.threshold = config?.stallAfterSeconds;
      this.waiting = config && this.threshold ? await this.count(config) : undefined;
      const now = JSON.stringify(this.fields);
      if (now !== this.told) {
        this.told = now;
        await this.changed();
      }
    } finally {
      this.running = false;
      if (this.timer) this.start();
    }
  }
}

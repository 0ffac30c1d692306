/**
 * Applies the device's bandwidth timetable (sync/bandwidth-window.ts) to the agent's rate
 * limiter: the window's rate, never above --max-rate; a hold sends nothing. A pass gets a signal
 * that aborts when a hold begins (uploads under way stop, as on a stop), and the limiter's rate
 * follows the windows while the pass runs.
 */
import type { DeviceConfig } from "./config/device-config";
import { describeWindow, openAt, windowNow } from "./sync/bandwidth-window";
import type { RateLimiter } from "./sync/rate-limit";

export type WindowState =
  | { held: false; description?: string }
  | { held: true; until?: number; description: string };

export class BandwidthKeeper {
  /** The cap from --max-rate (undefined: none). */
  private readonly flagRate?: number;
  /** Set when a hold began during the pass that `during` guards. */
  heldDuringPass = false;

  constructor(private readonly limiter: RateLimiter) {
    this.flagRate = limiter.rate;
  }

  /** What the timetable says now; sets the limiter's rate when it is not a hold. */
  apply(config: DeviceConfig | undefined, now = Date.now()): WindowState {
    const bw = config?.bandwidth;
    const device = deviceKey(config);
    const w = windowNow(bw, device, now);
    const description = describeWindow(bw, device, now);
    if (w.bytesPerSecond === 0)
      return { held: true, until: openAt(bw, device, now), description: description! };
    this.limiter.setRate(lower(this.flagRate, w.bytesPerSecond));
    return { held: false, description };
  }

  /**
   * A signal for one pass: aborted with `signal`, or when a hold begins; meanwhile the limiter's
   * rate changes at each window. `dispose` stops the timers.
   */
  during(
    config: DeviceConfig | undefined,
    signal?: AbortSignal,
  ): { signal: AbortSignal; dispose: () => void } {
    this.heldDuringPass = false;
    const controller = new AbortController();
    const stop = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", stop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const follow = () => {
      const until = windowNow(config?.bandwidth, deviceKey(config), Date.now()).until;
      if (until === undefined) return;
      timer = setTimeout(
        () => {
          if (this.apply(config).held) {
            this.heldDuringPass = true;
            controller.abort(new BandwidthHold());
          } else follow();
        },
        Math.min(until - Date.now() + 5, 2 ** 31 - 1),
      );
    };
    follow();
    return {
      signal: controller.signal,
      dispose: () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", stop);
      },
    };
  }
}

/** The reason a pass stops when a hold begins (engine.ts reports it as the pass's end). */
class BandwidthHold extends Error {
  override name = "BandwidthHold";
  constructor() {
    super("held by the bandwidth timetable");
  }
}

const deviceKey = (config?: DeviceConfig) =>
  config ? `${config.device.namespace}/${config.device.name}` : "";

const lower = (a?: number, b?: number) =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

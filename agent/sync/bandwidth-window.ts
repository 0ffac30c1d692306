/**
 * Bandwidth by time of day: the device's timetable says, from each start time (wall clock in its
 * time zone) on, a rate cap, no cap, or hold (send nothing). Each window opens at its start plus
 * a jitter of this device's own, between 0 and jitterSeconds, so that a fleet on one timetable
 * does not open all its connections in the same second. The jitter is a hash of the device and
 * the window's day and start: the same on every look (status can say when a hold ends), and
 * spread over the fleet. Pure: the agent asks it what applies now and when that changes.
 */
import { createHash } from "node:crypto";
import type { Bandwidth } from "../config/device-config";

export interface WindowNow {
  /** Bytes per second; undefined: no cap; 0: hold. */
  bytesPerSecond?: number;
  /** When what applies now changes (ms since the epoch); undefined: never (one window). */
  until?: number;
  /** The rate that applies from `until` on. */
  nextBytesPerSecond?: number;
}

const MINUTE = 60_000;
const DAY = 1440;

/** Minutes since midnight of "HH:MM". */
export function minutesOf(start: string): number {
  const [h, m] = start.split(":").map(Number);
  return h * 60 + m;
}

/** The wall-clock minute of the day (with its seconds and milliseconds as a fraction) at `now` in `timeZone`. */
export function localMinutes(now: number, timeZone: string): { minutes: number; day: string } {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(now));
  const get = (type: string) => parts.find(p => p.type === type)?.value ?? "0";
  const seconds = Number(get("second")) + (((now % 1000) + 1000) % 1000) / 1000;
  const minutes = Number(get("hour")) * 60 + Number(get("minute")) + seconds / 60;
  return { minutes, day: `${get("year")}-${get("month")}-${get("day")}` };
}

/** This device's jitter (ms) for the window that starts at `start` on `day`. */
export function jitterMs(
  device: string,
  day: string,
  start: string,
  jitterSeconds: number,
): number {
  if (!jitterSeconds) return 0;
  const digest = createHash("sha256").update(`${device}\0${day}\0${start}`).digest();
  return digest.readUInt32BE(0) % (jitterSeconds * 1000);
}

interface Opening {
  /** Index of the window in the (sorted) timetable. */
  window: number;
  /** When it opens, jitter included (ms since the epoch). */
  at: number;
}

/** The openings around `now`: the last one at or before it, and the next one after it. */
function openingsAround(bw: Bandwidth, device: string, now: number): [Opening, Opening] {
  const windows = bw.windows;
  const { minutes: nowMinutes } = localMinutes(now, bw.timeZone);
  const openings: Opening[] = [];
  // Yesterday's, today's and tomorrow's starts, as instants (wall-clock arithmetic: a DST change
  // moves a start by its hour until the next look, which happens at the latest at that start).
  for (const dayOffset of [-1, 0, 1])
    windows.forEach((w, i) => {
      const at = now + (minutesOf(w.start) - nowMinutes + dayOffset * DAY) * MINUTE;
      const { day } = localMinutes(at, bw.timeZone);
      openings.push({
        window: i,
        at: Math.round(at) + jitterMs(device, day, w.start, bw.jitterSeconds),
      });
    });
  openings.sort((a, b) => a.at - b.at);
  const next = openings.findIndex(o => o.at > now);
  return [openings[next - 1], openings[next]];
}

/** What the timetable says now, and until when. */
export function windowNow(bw: Bandwidth | undefined, device: string, now: number): WindowNow {
  if (!bw || bw.windows.length === 0) return {};
  const [current, next] = openingsAround(bw, device, now);
  const rate = (i: number) => bw.windows[i].bytesPerSecond;
  if (bw.windows.length === 1) return { bytesPerSecond: rate(current.window) };
  return {
    bytesPerSecond: rate(current.window),
    until: next.at,
    nextBytesPerSecond: rate(next.window),
  };
}

/** The first time from `now` on that the timetable does not hold; undefined when it always holds. */
export function openAt(bw: Bandwidth | undefined, device: string, now: number): number | undefined {
  let at = now;
  for (let i = 0; i <= (bw?.windows.length ?? 0) + 1; i++) {
    const w = windowNow(bw, device, at);
    if (w.bytesPerSecond !== 0) return at;
    if (w.until === undefined) return undefined;
    at = w.until;
  }
  return undefined;
}

/** "06:03" in the timetable's zone. */
export function wallClock(at: number, timeZone: string): string {
  const m = Math.floor(localMinutes(at, timeZone).minutes);
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

/** What status says about the timetable now: "held until 06:03 (Europe/Paris)", a cap, or nothing. */
export function describeWindow(
  bw: Bandwidth | undefined,
  device: string,
  now: number,
): string | undefined {
  if (!bw || bw.windows.length === 0) return undefined;
  const w = windowNow(bw, device, now);
  const zone = bw.timeZone;
  if (w.bytesPerSecond === 0) {
    const open = openAt(bw, device, now);
    return open === undefined
      ? `held: the timetable never opens`
      : `held until ${wallClock(open, zone)} (${zone})`;
  }
  const rate = w.bytesPerSecond === undefined ? "no cap" : `${w.bytesPerSecond} bytes/s`;
  return w.until === undefined ? rate : `${rate} until ${wallClock(w.until, zone)} (${zone})`;
}

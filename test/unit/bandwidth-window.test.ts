import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  describeWindow,
  jitterMs,
  openAt,
  wallClock,
  windowNow,
} from "../../agent/sync/bandwidth-window";
import { BandwidthKeeper } from "../../agent/bandwidth";
import { RateLimiter } from "../../agent/sync/rate-limit";
import { parseDeviceConfig, type Bandwidth } from "../../agent/config/device-config";
import { parseQuantity } from "../../agent/config/quantity";

const at = (iso: string) => Date.parse(iso);
const TABLE: Bandwidth = {
  timeZone: "Europe/Paris",
  jitterSeconds: 0,
  windows: [
    { start: "08:00", bytesPerSecond: 524288 },
    { start: "19:00", bytesPerSecond: 10_000_000 },
    { start: "23:00", bytesPerSecond: 0 },
  ],
};

test("the window at a time of day, in the timetable's zone, across midnight", () => {
  // 2026-12-06 is winter: Paris is UTC+1.
  assert.equal(windowNow(TABLE, "d", at("2026-12-06T08:30:00Z")), {
    bytesPerSecond: 524288,
    until: at("2026-12-06T18:00:00Z"),
    nextBytesPerSecond: 10_000_000,
  });
  const night = windowNow(TABLE, "d", at("2026-12-06T03:00:00Z")); // 04:00 in Paris
  assert.is(night.bytesPerSecond, 0);
  assert.is(night.until, at("2026-12-06T07:00:00Z"));
  assert.is(openAt(TABLE, "d", at("2026-12-06T03:00:00Z")), at("2026-12-06T07:00:00Z"));
  assert.is(
    describeWindow(TABLE, "d", at("2026-12-06T23:30:00Z")),
    "held until 08:00 (Europe/Paris)",
  );
  assert.is(
    describeWindow(TABLE, "d", at("2026-12-06T12:00:00Z")),
    "524288 bytes/s until 19:00 (Europe/Paris)",
  );
  // Summer time: UTC+2.
  assert.is(windowNow(TABLE, "d", at("2026-07-01T06:30:00Z")).bytesPerSecond, 524288);
  assert.is(wallClock(at("2026-07-01T06:30:00Z"), "Europe/Paris"), "08:30");
});

test("one window applies all day; a timetable that only holds never opens", () => {
  assert.equal(
    windowNow({ timeZone: "UTC", jitterSeconds: 0, windows: [{ start: "05:00" }] }, "d", 0),
    {
      bytesPerSecond: undefined,
    },
  );
  const hold: Bandwidth = {
    timeZone: "UTC",
    jitterSeconds: 60,
    windows: [{ start: "00:00", bytesPerSecond: 0 }],
  };
  assert.is(openAt(hold, "d", Date.now()), undefined);
  assert.is(describeWindow(hold, "d", Date.now()), "held: the timetable never opens");
  assert.is(windowNow(undefined, "d", 0).bytesPerSecond, undefined);
});

test("jitter: within the bound, the same on every look, spread over a fleet", () => {
  const values = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const j = jitterMs(`ns/device-${i}`, "2026-12-06", "08:00", 300);
    assert.ok(j >= 0 && j < 300_000, `${j}`);
    assert.is(jitterMs(`ns/device-${i}`, "2026-12-06", "08:00", 300), j);
    values.add(Math.floor(j / 30_000));
  }
  assert.is(values.size, 10, "every tenth of the bound is used");
  assert.is(jitterMs("d", "2026-12-06", "08:00", 0), 0);
  // A window opens at its start plus the device's jitter: until then the one before holds.
  const table: Bandwidth = { ...TABLE, jitterSeconds: 600 };
  const j = jitterMs("d", "2026-12-06", "08:00", 600);
  const opens = at("2026-12-06T07:00:00Z") + j;
  assert.is(windowNow(table, "d", opens - 1).bytesPerSecond, 0);
  assert.is(windowNow(table, "d", opens).bytesPerSecond, 524288);
  assert.is(openAt(table, "d", at("2026-12-06T03:00:00Z")), opens);
});

test("the keeper sets the limiter to the window's rate, never above --max-rate", () => {
  const config = (bandwidth?: Bandwidth) => {
    const parsed = parseDeviceConfig({
      version: 1,
      device: { namespace: "n", name: "d" },
      storage: null,
      workloads: [],
      ...(bandwidth ? { bandwidth } : {}),
    });
    assert.ok(parsed.ok);
    return parsed.value;
  };
  const limiter = new RateLimiter(1_000_000);
  const keeper = new BandwidthKeeper(limiter);
  assert.equal(keeper.apply(config(TABLE), at("2026-12-06T08:30:00Z")).held, false);
  assert.is(limiter.rate, 524288);
  keeper.apply(config(TABLE), at("2026-12-06T18:30:00Z")); // 10 MB/s, over the flag
  assert.is(limiter.rate, 1_000_000);
  assert.is(keeper.apply(config(TABLE), at("2026-12-06T23:30:00Z")).held, true);
  keeper.apply(config(), at("2026-12-06T23:30:00Z"));
  assert.is(limiter.rate, 1_000_000);
  const free = new RateLimiter();
  new BandwidthKeeper(free).apply(config(TABLE), at("2026-12-06T08:30:00Z"));
  assert.is(free.rate, 524288);
});

test("the schema refuses a bad timetable, naming the field", () => {
  const parse = (bandwidth: unknown) =>
    parseDeviceConfig({
      version: 1,
      device: { namespace: "n", name: "d" },
      storage: null,
      workloads: [],
      bandwidth,
    });
  const bad = (bandwidth: unknown, field: RegExp) => {
    const parsed = parse(bandwidth);
    assert.not.ok(parsed.ok);
    if (!parsed.ok) assert.match(parsed.error, field);
  };
  bad(
    { timeZone: "Mars/Olympus", windows: [{ start: "00:00" }] },
    /bandwidth\.timeZone: is not a known time zone/,
  );
  bad({ timeZone: "UTC", windows: [{ start: "24:00" }] }, /bandwidth\.windows\[0\]\.start/);
  bad(
    { timeZone: "UTC", windows: [{ start: "09:00" }, { start: "08:00" }] },
    /bandwidth\.windows: starts must be in order/,
  );
  bad({ timeZone: "UTC", windows: [] }, /bandwidth\.windows/);
  const ok = parse({ timeZone: "UTC", windows: [{ start: "00:00" }] });
  assert.ok(ok.ok && ok.value.bandwidth?.jitterSeconds === 300, "default jitter");
});

test("quantities: binary and decimal suffixes", () => {
  assert.is(parseQuantity("100Mi"), 100 * 1024 * 1024);
  assert.is(parseQuantity("1.5G"), 1_500_000_000);
  assert.is(parseQuantity("512Ki"), 524288);
  assert.is(parseQuantity("10M"), 10_000_000);
  assert.is(parseQuantity("42"), 42);
  for (const bad of ["", "1m", "-1", "1 Mi", "Mi", "1e3", "1KB"])
    assert.is(parseQuantity(bad), undefined, bad);
});

test.run();

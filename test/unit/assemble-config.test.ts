import { test } from "uvu";
import * as assert from "uvu/assert";
import { assembleDeviceConfig } from "../../capabilities/assemble-config";
import type { EdgeWorkload } from "../../capabilities/generated/edgeworkload-v1alpha1";

const wl = (name: string, spec: Record<string, unknown>, namespace = "edge") =>
  ({ metadata: { name, namespace }, spec: { type: "pod", ...spec } }) as EdgeWorkload;
const storage = {
  kind: "external" as const,
  endpoint: "https://s3:443",
  bucket: "bkt",
  region: "r",
  accessKeyId: "a",
  secretAccessKey: "s",
  forcePathStyle: true,
};
const device = { namespace: "edge", name: "cam-1", labels: { dc: "home" } };

test("storage plus the paths of every selecting workload, sorted", () => {
  const config = assembleDeviceConfig(device, storage, [
    wl("z-stats", {
      deviceSelector: { matchLabels: { dc: "home" } },
      data: { paths: [{ source: "s", target: "t" }] },
    }),
    wl("a-cam", {
      device: "cam-1",
      data: {
        paths: [
          { source: "frames", target: "video" },
          { source: "x", target: "y" },
        ],
      },
    }),
    wl("other-dc", {
      deviceSelector: { matchLabels: { dc: "lab" } },
      data: { paths: [{ source: "s", target: "t2" }] },
    }),
    wl(
      "other-ns",
      { device: "cam-1", data: { paths: [{ source: "s", target: "t3" }] } },
      "elsewhere",
    ),
    wl("no-paths", { device: "cam-1" }),
  ]);
  assert.equal(config, {
    version: 1,
    device: { namespace: "edge", name: "cam-1" },
    storage,
    workloads: [
      {
        name: "a-cam",
        paths: [
          { source: "frames", target: "video" },
          { source: "x", target: "y" },
        ],
      },
      { name: "z-stats", paths: [{ source: "s", target: "t" }] },
    ],
    syncIntervalSeconds: 15,
    keyPrefix: "",
    resumeUploads: false,
    abortUploadsAfterHours: 24,
  });
});

test("the device's key prefix and upload settings, and each path's filters, reach the config", () => {
  const config = assembleDeviceConfig(
    device,
    storage,
    [
      wl("cam", {
        device: "cam-1",
        data: {
          paths: [
            { source: "a", target: "a", include: ["*.csv"], exclude: [], quietSeconds: 0 },
            { source: "b", target: "b", exclude: ["*.tmp"], quietSeconds: 30 },
          ],
        },
      }),
    ],
    { keyPrefix: "edge/cam-1", resumeUploads: true, abortUploadsAfterHours: 6 },
  );
  assert.equal(config.workloads[0].paths, [
    // Empty lists and a zero quiet period are left out: an unchanged config stays byte-identical.
    { source: "a", target: "a", include: ["*.csv"] },
    { source: "b", target: "b", exclude: ["*.tmp"], quietSeconds: 30 },
  ]);
  assert.equal(
    [config.keyPrefix, config.resumeUploads, config.abortUploadsAfterHours],
    ["edge/cam-1", true, 6],
  );
});

test("no storage is a valid config", () => {
  assert.is(assembleDeviceConfig(device, null, []).storage, null);
});

test("a path the agent would refuse is never written", () => {
  assert.throws(
    () =>
      assembleDeviceConfig(device, storage, [
        wl("bad", { device: "cam-1", data: { paths: [{ source: "../x", target: "t" }] } }),
      ]),
    /workloads\[0\]\.paths\[0\]\.source/,
  );
});

test("upload options: spec fields become config fields (quantities in bytes, off as 0)", () => {
  const config = assembleDeviceConfig(
    device,
    storage,
    [
      wl("cam", {
        device: "cam-1",
        data: {
          paths: [
            {
              source: "s",
              target: "t",
              priority: 5,
              order: "OldestFirst",
              compression: "gzip",
              retention: { deleteAfterUpload: true, deleteAfterSeconds: 60, maxSize: "100Mi" },
            },
            { source: "n", target: "n", order: "NewestFirst", compression: "none" },
          ],
        },
      }),
    ],
    {
      keyPrefix: "",
      stallAfterSeconds: 600,
      bandwidth: {
        timeZone: "Europe/Paris",
        schedule: [
          { start: "23:00", rate: "off" },
          { start: "08:00", rate: "512Ki" },
          { start: "19:00", rate: "unlimited" },
        ],
      },
    },
  );
  assert.equal(config.workloads[0].paths, [
    {
      source: "s",
      target: "t",
      priority: 5,
      order: "oldest-first",
      compression: "gzip",
      retention: { deleteAfterUpload: true, deleteAfterSeconds: 60, maxBytes: 100 * 1024 * 1024 },
    },
    { source: "n", target: "n", order: "newest-first" },
  ]);
  assert.equal(config.bandwidth, {
    timeZone: "Europe/Paris",
    jitterSeconds: 300,
    windows: [
      { start: "08:00", bytesPerSecond: 524288 },
      { start: "19:00" },
      { start: "23:00", bytesPerSecond: 0 },
    ],
  });
  assert.is(config.stallAfterSeconds, 600);
});

test.run();

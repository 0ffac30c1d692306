import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  boundedName,
  deviceConfigSecretName,
  deviceStem,
  targetProblem,
  DeviceConfigInput,
  parseDeviceConfig,
  parseDeviceConfigJson,
  relativePathProblem,
} from "../../agent/config/device-config";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n";

function valid(): DeviceConfigInput {
  return {
    version: 1,
    device: { namespace: "edge", name: "camera-1" },
    storage: {
      kind: "external",
      endpoint: "https://s3.example.com:443",
      bucket: "device-bucket-6",
      region: "us-east-1",
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG",
      caBundle: CA,
    },
    workloads: [{ name: "os-stats", paths: [{ source: "stats", target: "statistics" }] }],
  };
}

function errorOf(input: unknown): string {
  const parsed = parseDeviceConfig(input);
  assert.not.ok(parsed.ok, "config should be rejected");
  return parsed.ok ? "" : parsed.error;
}

test("a complete config parses, with defaults filled in", () => {
  const parsed = parseDeviceConfig(valid());
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.is(parsed.value.syncIntervalSeconds, 15);
  assert.is(parsed.value.storage?.forcePathStyle, true);
  assert.is(parsed.value.workloads[0].paths[0].target, "statistics");
});

test("key prefix, resumes and path filters: defaults, and bad values named", () => {
  const parsed = parseDeviceConfig(valid());
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.equal(
    [parsed.value.keyPrefix, parsed.value.resumeUploads, parsed.value.abortUploadsAfterHours],
    ["", false, 24],
  );
  const config = { ...valid(), keyPrefix: "../up", abortUploadsAfterHours: 0 };
  config.workloads[0].paths[0] = {
    ...config.workloads[0].paths[0],
    include: ["[x"],
    quietSeconds: -1,
  } as (typeof config.workloads)[0]["paths"][0];
  const error = errorOf(config);
  assert.match(error, /keyPrefix: must be a relative path without '\.\.'/);
  assert.match(error, /abortUploadsAfterHours: /);
  assert.match(error, /workloads\[0\]\.paths\[0\]\.include\[0\]: has an unclosed \[/);
  assert.match(error, /workloads\[0\]\.paths\[0\]\.quietSeconds: /);
});

test("no storage is a valid config (the agent waits)", () => {
  const parsed = parseDeviceConfig({ ...valid(), storage: null });
  assert.ok(parsed.ok);
});

test("a missing field is named", () => {
  const config = valid() as Record<string, unknown>;
  delete config.workloads;
  assert.match(errorOf(config), /^workloads: /);
});

test("a nested bad field is named with its index", () => {
  const config = valid();
  config.workloads[0].paths.push({ source: "../etc", target: "x" });
  assert.match(errorOf(config), /workloads\[0\]\.paths\[1\]\.source: must not contain '\.\.'/);
});

test("every bad field is reported, not only the first", () => {
  const config = valid();
  config.storage!.endpoint = "s3.example.com";
  config.storage!.bucket = "";
  const error = errorOf(config);
  assert.match(error, /storage\.endpoint: must be http\(s\):\/\/host\[:port\]/);
  assert.match(error, /storage\.bucket: must be an S3 bucket name/);
});

test("unknown fields are rejected (a typo is not silently ignored)", () => {
  assert.match(errorOf({ ...valid(), syncInterval: 5 }), /syncInterval/);
});

test("a CA bundle that is not PEM is rejected", () => {
  const config = valid();
  config.storage!.caBundle = "not a certificate";
  assert.match(errorOf(config), /storage\.caBundle: must be PEM certificates/);
});

test("a wrong version is rejected", () => {
  assert.match(errorOf({ ...valid(), version: 2 }), /^version: /);
});

test("sync interval must be a positive whole number of seconds", () => {
  assert.match(errorOf({ ...valid(), syncIntervalSeconds: 0 }), /syncIntervalSeconds/);
  assert.match(errorOf({ ...valid(), syncIntervalSeconds: 1.5 }), /syncIntervalSeconds/);
});

test("errors never echo a credential", () => {
  const config = valid();
  config.storage!.secretAccessKey = 42 as unknown as string;
  config.storage!.accessKeyId = "";
  const error = errorOf(config);
  assert.match(error, /storage\.secretAccessKey/);
  assert.not.match(error, /42/);
  const json = parseDeviceConfigJson('{"storage": {"secretAccessKey": TOPSECRET}}');
  assert.not.ok(json.ok);
  if (!json.ok) assert.not.match(json.error, /TOPSECRET/);
});

test("JSON text parses through the same schema", () => {
  const parsed = parseDeviceConfigJson(JSON.stringify(valid()));
  assert.ok(parsed.ok);
  const broken = parseDeviceConfigJson("{");
  assert.not.ok(broken.ok);
  if (!broken.ok) assert.match(broken.error, /^not valid JSON/);
});

test("relative path rules", () => {
  assert.is(relativePathProblem("stats"), undefined);
  assert.is(relativePathProblem("a/b/c"), undefined);
  assert.is(relativePathProblem("a..b"), undefined);
  assert.is(relativePathProblem(""), "must not be empty");
  assert.is(relativePathProblem("/abs"), "must be relative, not absolute");
  assert.is(relativePathProblem("a/../b"), "must not contain '..'");
  assert.is(relativePathProblem(".."), "must not contain '..'");
});

test("names made from a device name stay within Kubernetes' limits, distinct and stable", () => {
  const long = `d${"x".repeat(250)}z1`; // 253
  const other = `d${"x".repeat(250)}z2`;
  const secret = deviceConfigSecretName(long);
  assert.ok(secret.length <= 253 && secret.endsWith("-data-upload"), secret);
  assert.is.not(secret, deviceConfigSecretName(other));
  assert.is(secret, deviceConfigSecretName(long));
  assert.ok(`${deviceStem(long)}-data-upload-agent`.length <= 253);
  assert.match(secret, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  // A head that ends in . or - is cut back to a letter or digit before the digest.
  assert.match(boundedName(`ab.${"-".repeat(80)}`, "", 63), /^ab-[0-9a-f]{10}$/);
  // Short names are themselves.
  assert.is(deviceConfigSecretName("cam-1"), "cam-1-data-upload");
  assert.is(boundedName("cam-1", "", 63), "cam-1");
});

test("a target must name a folder: '.' and './' are refused, as in admission", () => {
  assert.is(targetProblem("frames"), undefined);
  for (const bad of [".", "./", "./."]) assert.match(targetProblem(bad)!, /must name a folder/);
});

test.run();

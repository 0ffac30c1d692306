/**
 * The device config: the one contract between the module (which writes it into a Secret per
 * device) and the agent (which reads it from that Secret or from a local file). The TypeScript
 * type is inferred from the schema, so the two can never drift apart.
 *
 * This file must stay free of pepr, Kubernetes and AWS imports: it is bundled into both programs.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { globSyntaxProblem } from "../sync/glob";
import { normalizeTarget } from "../sync/keys";

export const DEVICE_CONFIG_VERSION = 1;
/** Key of the config JSON inside the device config Secret. */
export const DEVICE_CONFIG_KEY = "config.json";
export const DEFAULT_SYNC_INTERVAL_SECONDS = 15;
export const DEFAULT_ABORT_UPLOADS_AFTER_HOURS = 24;
/** The longest key prefix a device config holds (S3 keys are at most 1,024 bytes in all). */
export const MAX_KEY_PREFIX = 512;

/**
 * A name made from a device's name that stays a valid Kubernetes name of at most `max`
 * characters once `suffix` is added: the device name itself when it fits, else its first
 * characters, `-` and 10 hex digits of its SHA-256 (so two long names never meet).
 */
export function boundedName(deviceName: string, suffix: string, max: number): string {
  if (deviceName.length + suffix.length <= max) return `${deviceName}${suffix}`;
  const digest = createHash("sha256").update(deviceName).digest("hex").slice(0, 10);
  const head = deviceName.slice(0, max - suffix.length - 11).replace(/[-.]+$/, "");
  return `${head}-${digest}${suffix}`;
}

/**
 * The Secret that holds the config of device `name` (in the device's namespace). Device names
 * may be 253 characters long, as Secret names: a long one is shortened (boundedName), with the
 * same stem as the device's ServiceAccount, Role and RoleBinding (`<stem>-data-upload-agent`).
 */
export function deviceConfigSecretName(deviceName: string): string {
  return `${deviceStem(deviceName)}-data-upload`;
}

/** What a device's object names start with: its name, or its shortened name (see above). */
export function deviceStem(deviceName: string): string {
  return boundedName(deviceName, "-data-upload-agent", 253).slice(0, -"-data-upload-agent".length);
}

/**
 * Why a data path would escape its directory, or undefined when it is a clean relative path.
 * Shared by admission (EdgeWorkload spec.data.paths) and by this schema.
 */
export function relativePathProblem(path: string): string | undefined {
  if (path.length === 0) return "must not be empty";
  if (path.startsWith("/")) return "must be relative, not absolute";
  if (path.includes("\\")) return "must use / as separator";
  if (path.includes("\0")) return "must not contain NUL";
  if (path.split("/").some(segment => segment === "..")) return "must not contain '..'";
  return undefined;
}

/**
 * Why a data path's target cannot be one, or undefined: a clean relative path that names a
 * folder. `.` (or `./`) would put the path's files at the top of the bucket (or of the device's
 * key prefix), where its listings and the clean-up of open uploads would reach every other
 * device's and path's keys.
 */
export function targetProblem(target: string): string | undefined {
  const problem = relativePathProblem(target);
  if (problem) return problem;
  if (normalizeTarget(target) === "")
    return "must name a folder in the bucket (such as the workload's name), not '.'";
  return undefined;
}

const checked = (problemOf: (value: string) => string | undefined) =>
  z.string().superRefine((value, ctx) => {
    const problem = problemOf(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
const relativePath = checked(relativePathProblem);

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** True when text holds at least one PEM certificate and nothing but PEM blocks and blank space. */
export function isPemCertificateBundle(text: string): boolean {
  if (!PEM_CERTIFICATE.test(text)) return false;
  const rest = text.replace(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g, "");
  return rest.trim() === "";
}

export const storageSchema = z.strictObject({
  /** Where the storage came from: an ObjectBucketClaim (OCS) or the user's ConfigMap + Secret. */
  kind: z.enum(["ocs", "external"]),
  /** Scheme, host and port, e.g. https://s3.example.com:443. */
  endpoint: z.string().refine(value => /^https?:\/\/[^/\s?#]+\/?$/.test(value), {
    message: "must be http(s)://host[:port] with no path",
  }),
  bucket: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/, "must be an S3 bucket name"),
  region: z.string().min(1),
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  /** PEM bundle trusted in addition to the system CAs. */
  caBundle: z
    .string()
    .refine(isPemCertificateBundle, { message: "must be PEM certificates" })
    .optional(),
  /** Path-style addressing (bucket in the path): what S3-compatible servers need. */
  forcePathStyle: z.boolean().default(true),
});

/**
 * Why a glob (include/exclude of a data path) is not usable, or undefined. `*` and `?` match
 * within one path segment, `**` across segments, `[abc]` one character of a set; a glob without
 * `/` matches a file's name at any depth, one with `/` the path relative to the source.
 */
export function globProblem(glob: string): string | undefined {
  if (glob.length === 0) return "must not be empty";
  if (glob.length > 256) return "must be at most 256 characters";
  if (glob.startsWith("/")) return "must be relative to the source, not absolute";
  if (glob.includes("\\")) return "must use / as separator";
  return globSyntaxProblem(glob);
}

/**
 * A data path's globs match in time linear in a path's length, times the wildcards they hold
 * (agent/sync/glob.ts): this many `*` or `**` at most, over include and exclude together, keep
 * the filter within a few milliseconds for the longest key.
 */
export const MAX_GLOB_WILDCARDS = 32;

/** Why a data path's globs together are too costly to match, or undefined. */
export function globsProblem(globs: string[]): string | undefined {
  const wildcards = globs.reduce((n, g) => n + (g.match(/\*+/g) ?? []).length, 0);
  return wildcards > MAX_GLOB_WILDCARDS
    ? `hold ${wildcards} wildcards (* or **) together; at most ${MAX_GLOB_WILDCARDS} per data path`
    : undefined;
}

const glob = checked(globProblem);

/** Longest quiet period a data path may ask for: one day. */
export const MAX_QUIET_SECONDS = 86400;
/** Longest a confirmed file may be kept before retention deletes it: 30 days. */
export const MAX_RETENTION_DELAY = 30 * 86400;

export const retentionSchema = z
  .strictObject({
    /** Delete each file once its object is confirmed in the bucket… */
    deleteAfterUpload: z.boolean().optional(),
    /** …and it has not changed for this many seconds (0: at once). */
    deleteAfterSeconds: z.number().int().min(0).max(MAX_RETENTION_DELAY).optional(),
    /** Keep the source folder under this many bytes: oldest confirmed files go first. */
    maxBytes: z.number().int().min(1).optional(),
  })
  .refine(r => r.deleteAfterUpload || r.maxBytes !== undefined, {
    message: "needs deleteAfterUpload or a size cap (maxBytes)",
  });

export const dataPathSchema = z
  .strictObject({
    /** Directory under the workload's /export. */
    source: relativePath,
    /** Key prefix in the bucket (after the device's keyPrefix). */
    target: checked(targetProblem),
    /** Only files matching one of these are uploaded; empty or absent: every file. */
    include: z.array(glob).max(64).optional(),
    /** Files matching one of these are never uploaded (wins over include). */
    exclude: z.array(glob).max(64).optional(),
    /** A file modified less than this many seconds ago waits for a later pass; 0: off. */
    quietSeconds: z.number().int().min(0).max(MAX_QUIET_SECONDS).optional(),
    /** Higher goes first when the link is the bottleneck (default 0). */
    priority: z.number().int().min(-1000).max(1000).optional(),
    /** Within the path: oldest (by modification time) or newest first; absent: walk order. */
    order: z.enum(["oldest-first", "newest-first"]).optional(),
    /** Objects are the gzip of the file, under `<key>.gz` (see agent/sync/compression.ts). */
    compression: z.enum(["gzip"]).optional(),
    /** Local files deleted once confirmed in the bucket (see agent/sync/retention.ts). */
    retention: retentionSchema.optional(),
  })
  .superRefine((path, ctx) => {
    const problem = globsProblem([...(path.include ?? []), ...(path.exclude ?? [])]);
    if (problem)
      ctx.addIssue({
        code: "custom",
        path: ["include"],
        message: `include and exclude ${problem}`,
      });
  });

export const DEFAULT_JITTER_SECONDS = 300;

/** True when the runtime knows the time zone (an IANA name such as Europe/Paris, or UTC). */
export function knownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** "HH:MM", 00:00 to 23:59. */
const CLOCK = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

export const bandwidthSchema = z
  .strictObject({
    /** IANA time zone of the start times, e.g. Europe/Paris. */
    timeZone: checked(zone => (knownTimeZone(zone) ? undefined : "is not a known time zone")),
    /** Each window opens up to this many seconds after its start, by a delay of the device's own. */
    jitterSeconds: z.number().int().min(0).max(3600).default(DEFAULT_JITTER_SECONDS),
    /** From each start on: bytesPerSecond absent, no cap; 0, hold (send nothing); else the cap. */
    windows: z
      .array(
        z.strictObject({
          start: z.string().regex(CLOCK, "must be HH:MM, 00:00 to 23:59"),
          bytesPerSecond: z.number().int().min(0).optional(),
        }),
      )
      .min(1)
      .max(48),
  })
  .superRefine((bw, ctx) => {
    const starts = bw.windows.map(w => w.start);
    const sorted = [...starts].sort();
    if (starts.some((s, i) => s !== sorted[i]) || new Set(starts).size !== starts.length)
      ctx.addIssue({
        code: "custom",
        path: ["windows"],
        message: "starts must be in order, each once",
      });
  });

export const workloadSchema = z.strictObject({
  name: z.string().min(1),
  paths: z.array(dataPathSchema),
});

export const deviceConfigSchema = z.strictObject({
  version: z.literal(DEVICE_CONFIG_VERSION),
  device: z.strictObject({ namespace: z.string().min(1), name: z.string().min(1) }),
  /** null: no storage is configured; the agent waits. */
  storage: storageSchema.nullable(),
  workloads: z.array(workloadSchema),
  syncIntervalSeconds: z.number().int().min(1).max(86400).default(DEFAULT_SYNC_INTERVAL_SECONDS),
  /**
   * Put before every object key of this device (`<keyPrefix>/<target>/<path>`): the module
   * expands the EdgeDevice's spec.storage.keyPrefix template (e.g. `{namespace}/{device}`), so
   * devices sharing a bucket keep apart. Empty: keys start at the target.
   */
  keyPrefix: z
    .string()
    .max(MAX_KEY_PREFIX)
    .refine(value => value === "" || !relativePathProblem(value), {
      message: "must be a relative path without '..'",
    })
    .default(""),
  /** Multipart uploads cut short (crash, reboot, lost link) continue from the parts sent. */
  resumeUploads: z.boolean().default(false),
  /** Open multipart uploads older than this are aborted rather than resumed. */
  abortUploadsAfterHours: z
    .number()
    .int()
    .min(1)
    .max(8760)
    .default(DEFAULT_ABORT_UPLOADS_AFTER_HOURS),
  /** Rate caps and holds by time of day (absent: the agent's --max-rate all day). */
  bandwidth: bandwidthSchema.optional(),
  /** The oldest file waiting longer than this makes the upload "stalled" (absent: never). */
  stallAfterSeconds: z
    .number()
    .int()
    .min(10)
    .max(30 * 86400)
    .optional(),
});

export type DeviceConfig = z.infer<typeof deviceConfigSchema>;
export type DeviceConfigInput = z.input<typeof deviceConfigSchema>;
export type Storage = z.infer<typeof storageSchema>;
export type DataPath = z.infer<typeof dataPathSchema>;
export type WorkloadPaths = z.infer<typeof workloadSchema>;
export type Retention = z.infer<typeof retentionSchema>;
export type Bandwidth = z.infer<typeof bandwidthSchema>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** `workloads[0].paths[1].source` from zod's path array. */
function fieldName(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : `${i ? "." : ""}${String(part)}`))
    .join("");
}

/**
 * Validates a config object. The error names every bad field, and never echoes a value
 * (a value may be a credential).
 */
export function parseDeviceConfig(input: unknown): Parsed<DeviceConfig> {
  const result = deviceConfigSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const problems = result.error.issues.map(issue => {
    const field = fieldName(issue.path) || "(config)";
    return `${field}: ${issue.message}`;
  });
  return { ok: false, error: problems.join("; ") };
}

/** Parses the JSON text of a config (a file, or the Secret's config.json). */
export function parseDeviceConfigJson(text: string): Parsed<DeviceConfig> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the input, which may hold a credential: keep only the position.
    const position = /position (\d+)/.exec((err as Error).message)?.[1];
    return { ok: false, error: `not valid JSON${position ? ` (at position ${position})` : ""}` };
  }
  return parseDeviceConfig(json);
}

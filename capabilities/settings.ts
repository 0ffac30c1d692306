/**
 * Module settings, from environment variables: package.json "pepr.env" when deployed (or
 * `kubectl set env` on the module's Deployments), the shell with `npm run module:dev`. Each is
 * declared once in SETTINGS (name, default, check, help); the README's table says the same.
 */
import { isPemCertificateBundle } from "../agent/config/device-config";

export interface ModuleSettings {
  obcStorageClass: string;
  createObcDefault: "auto" | "true" | "false";
  resyncSeconds: number;
  /** Requests per second the reconciles may send to the API server, and the burst above it. */
  apiQps: number;
  apiBurst: number;
  /** Devices reconciled at once. */
  workers: number;
  /** Where devices reach claim buckets, when the claim's own host is in-cluster only. */
  obcEndpoint?: string;
  /** CA bundle (PEM) for obcEndpoint. */
  obcCa?: string;
  /** Settings that were given but are invalid: each names the variable; claims report it. */
  problems: string[];
}

interface Setting<K extends keyof ModuleSettings> {
  env: string;
  key: K;
  default?: string;
  help: string;
  /** The value, or a string starting with "!" saying why it is not valid. */
  parse: (raw: string) => ModuleSettings[K] | `!${string}`;
}

const setting = <K extends keyof ModuleSettings>(s: Setting<K>) => s;

export const SETTINGS = [
  setting({
    env: "EDGE_UPLOAD_OBC_STORAGE_CLASS",
    key: "obcStorageClass",
    default: "openshift-storage.noobaa.io",
    help: "storage class of the claims",
    parse: raw => raw,
  }),
  setting({
    env: "EDGE_UPLOAD_CREATE_OBC",
    key: "createObcDefault",
    default: "auto",
    help: "default of `createOBC`: `auto` (on where `objectbucket.io` is served), `true`, `false`",
    parse: raw =>
      raw === "auto" || raw === "true" || raw === "false" ? raw : "!must be auto, true or false",
  }),
  setting({
    env: "EDGE_UPLOAD_RESYNC_SECONDS",
    key: "resyncSeconds",
    default: "60",
    help: "every device is reconciled again this often (failures retry sooner, with backoff)",
    parse: raw => wholeNumber(raw, 5, 86_400),
  }),
  setting({
    env: "EDGE_UPLOAD_API_QPS",
    key: "apiQps",
    default: "500",
    help: "requests per second the reconciles send to the API server at most (a token bucket)",
    parse: raw => wholeNumber(raw, 1, 10_000),
  }),
  setting({
    env: "EDGE_UPLOAD_API_BURST",
    key: "apiBurst",
    default: "1000",
    help: "requests the reconciles may send at once above `EDGE_UPLOAD_API_QPS`",
    parse: raw => wholeNumber(raw, 1, 100_000),
  }),
  setting({
    env: "EDGE_UPLOAD_WORKERS",
    key: "workers",
    default: "32",
    help: "devices reconciled at once",
    parse: raw => wholeNumber(raw, 1, 256),
  }),
  setting({
    env: "EDGE_UPLOAD_OBC_ENDPOINT",
    key: "obcEndpoint",
    help: "the S3 endpoint devices use for claim buckets, `https://host[:port]`: replaces the claim's in-cluster `BUCKET_HOST`/`BUCKET_PORT`",
    parse: parseEndpoint,
  }),
  setting({
    env: "EDGE_UPLOAD_OBC_CA",
    key: "obcCa",
    help: "PEM CA bundle devices trust for `EDGE_UPLOAD_OBC_ENDPOINT` (default: the system's)",
    parse: raw => (isPemCertificateBundle(raw) ? raw : "!is not a PEM certificate bundle"),
  }),
];

function wholeNumber(raw: string, min: number, max: number): number | `!${string}` {
  return /^\d+$/.test(raw) && Number(raw) >= min && Number(raw) <= max
    ? Number(raw)
    : `!must be a whole number from ${min} to ${max}`;
}

/** `scheme://host[:port]` with the port made explicit, or why not. */
export function parseEndpoint(raw: string): string | `!${string}` {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return "!is not a URL (https://host[:port])";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    return "!must start with https:// or http://";
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.username)
    return "!must be scheme://host[:port], without path, query or user";
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `${url.protocol}//${url.hostname}:${port}`;
}

export function readSettings(
  env: Record<string, string | undefined> = process.env,
): ModuleSettings {
  const settings: Record<string, unknown> = { problems: [] };
  const problems = settings.problems as string[];
  for (const s of SETTINGS) {
    const raw = env[s.env]?.trim() ? env[s.env]! : s.default;
    if (raw === undefined) continue;
    const value = (s.parse as (raw: string) => unknown)(raw);
    if (typeof value === "string" && value.startsWith("!")) {
      problems.push(`module setting ${s.env} ${value.slice(1)}`);
      if (s.default !== undefined)
        settings[s.key] = (s.parse as (raw: string) => unknown)(s.default);
    } else settings[s.key] = value;
  }
  return settings as unknown as ModuleSettings;
}

/** Whether a device wants an OBC: its own createOBC, else the module default. */
export function wantsObc(
  createOBC: boolean | undefined,
  settings: ModuleSettings,
  obcApiServed: boolean,
): boolean {
  if (createOBC !== undefined) return createOBC;
  if (settings.createObcDefault === "auto") return obcApiServed;
  return settings.createObcDefault === "true";
}

/**
 * Which storage a device gets, decided from the objects the module read. Pure: every case is
 * a table row in test/unit/storage.test.ts.
 *
 * Precedence: a bound ObjectBucketClaim the device wants; else the ConfigMap + Secret named in
 * spec.storage.s3; else none. An OBC that is not bound yet does not hold up external storage:
 * the device uses it meanwhile, and moves to the claim's bucket once it binds.
 */
import { isPemCertificateBundle, type Storage } from "../agent/config/device-config";

/** A ConfigMap's or Secret's data, decoded; undefined when the object does not exist. */
export type Data = Record<string, string> | undefined;

export type ObcState =
  | { state: "not-wanted" }
  /** The objectbucket.io API is not served in this cluster. */
  | { state: "api-missing" }
  | { state: "missing"; name: string }
  | {
      state: "present";
      name: string;
      phase?: string;
      configMap: Data;
      secret: Data;
      /** Where devices reach the claim's bucket, when not at the claim's own host. */
      endpoint?: ClaimEndpoint;
    };

/**
 * The endpoint devices use for claim buckets instead of the claim's BUCKET_HOST: the module
 * setting, or on OpenShift the host of the `s3` Route (as Flotta did); `invalid` when the
 * setting was given and is wrong.
 */
export type ClaimEndpoint =
  | { source: "setting" | "route"; url: string; caBundle?: string; what: string }
  | { source: "invalid"; message: string };

/** A host only resolvable inside the cluster: a Service name. */
export function isInClusterHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return h.endsWith(".svc") || h.includes(".svc.") || h.endsWith(".cluster.local");
}

export interface StorageInputs {
  namespace: string;
  obc: ObcState;
  /** spec.storage.s3 names, when set. */
  external?: { configMapName?: string; secretName?: string; configMap: Data; secret: Data };
}

export interface Problem {
  reason: string;
  message: string;
}

export interface StorageResolution {
  /** The storage to write; null means none is configured (not a failure). */
  storage?: Storage | null;
  /** When set, nothing usable was found: keep the last good config. */
  problem?: Problem;
  /** What the OBC is doing, when the device wants one (for its own condition). */
  obc?: { ready: boolean; reason: string; message: string };
}

const REGION_DEFAULT = "us-east-1";

/**
 * Storage from the S3 keys of a ConfigMap (BUCKET_*) and a Secret (AWS_*, tls.crt). BUCKET_HOST
 * may carry a scheme; without one, port 443 or a CA bundle means https, any other port http.
 */
export function storageFromKeys(
  kind: Storage["kind"],
  configMap: { ref: string; data: Record<string, string> },
  secret: { ref: string; data: Record<string, string> },
): Storage | Problem {
  const need = (
    from: { ref: string; data: Record<string, string> },
    what: string,
    key: string,
  ): string | Problem => {
    const value = from.data[key]?.trim();
    if (!value)
      return {
        reason: "KeyMissing",
        message: `${what} ${from.ref}: key ${key} is missing or empty`,
      };
    return value;
  };
  const fields = {
    host: need(configMap, "ConfigMap", "BUCKET_HOST"),
    port: need(configMap, "ConfigMap", "BUCKET_PORT"),
    bucket: need(configMap, "ConfigMap", "BUCKET_NAME"),
    accessKeyId: need(secret, "Secret", "AWS_ACCESS_KEY_ID"),
    secretAccessKey: need(secret, "Secret", "AWS_SECRET_ACCESS_KEY"),
  };
  for (const value of Object.values(fields)) if (typeof value !== "string") return value;
  const { host, port, bucket, accessKeyId, secretAccessKey } = fields as Record<
    keyof typeof fields,
    string
  >;

  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return {
      reason: "InvalidPort",
      message: `ConfigMap ${configMap.ref}: key BUCKET_PORT: "${port}" is not a port number (1-65535)`,
    };
  }
  const caBundle = secret.data["tls.crt"]?.trim() ? secret.data["tls.crt"] : undefined;
  if (caBundle !== undefined && !isPemCertificateBundle(caBundle)) {
    return {
      reason: "InvalidCA",
      message: `Secret ${secret.ref}: key tls.crt is not a PEM certificate bundle`,
    };
  }
  const schemeMatch = /^(https?):\/\/(.+?)\/*$/.exec(host);
  const scheme = schemeMatch ? schemeMatch[1] : port === "443" || caBundle ? "https" : "http";
  const bareHost = schemeMatch ? schemeMatch[2] : host;
  if (/[/\s?#]/.test(bareHost) || (bareHost.includes(":") && !bareHost.startsWith("["))) {
    return {
      reason: "InvalidHost",
      message: `ConfigMap ${configMap.ref}: key BUCKET_HOST: "${host}" must be a host name or address, without port or path`,
    };
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/.test(bucket)) {
    return {
      reason: "InvalidBucket",
      message: `ConfigMap ${configMap.ref}: key BUCKET_NAME: "${bucket}" is not an S3 bucket name`,
    };
  }
  return {
    kind,
    endpoint: `${scheme}://${bareHost}:${port}`,
    bucket,
    region: configMap.data.BUCKET_REGION?.trim() || REGION_DEFAULT,
    accessKeyId,
    secretAccessKey,
    ...(caBundle ? { caBundle } : {}),
    forcePathStyle: true,
  };
}

const isProblem = (value: Storage | Problem): value is Problem =>
  "reason" in value && "message" in value;

function fromObc(
  namespace: string,
  obc: ObcState,
): { storage?: Storage; obc?: StorageResolution["obc"] } {
  switch (obc.state) {
    case "not-wanted":
      return {};
    case "api-missing":
      return {
        obc: {
          ready: false,
          reason: "ObcApiMissing",
          message:
            "the objectbucket.io API is not served in this cluster: no ObjectBucketClaim can be provisioned",
        },
      };
    case "missing":
      return {
        obc: {
          ready: false,
          reason: "ObcMissing",
          message: `ObjectBucketClaim ${namespace}/${obc.name} does not exist yet`,
        },
      };
  }
  const ref = `${namespace}/${obc.name}`;
  if (obc.phase !== "Bound") {
    const reason =
      obc.phase === "Lost" ? "ObcLost" : obc.phase === "Failed" ? "ObcFailed" : "ObcPending";
    return {
      obc: {
        ready: false,
        reason,
        message: `ObjectBucketClaim ${ref} is ${obc.phase ?? "not bound yet"}`,
      },
    };
  }
  if (!obc.configMap)
    return {
      obc: {
        ready: false,
        reason: "ConfigMapNotFound",
        message: `ConfigMap ${ref} of the bound ObjectBucketClaim does not exist`,
      },
    };
  if (!obc.secret)
    return {
      obc: {
        ready: false,
        reason: "SecretNotFound",
        message: `Secret ${ref} of the bound ObjectBucketClaim does not exist`,
      },
    };
  const keys = storageFromKeys("ocs", { ref, data: obc.configMap }, { ref, data: obc.secret });
  if (isProblem(keys)) return { obc: { ready: false, ...keys } };
  const storage = reachable(ref, keys, obc.endpoint);
  if (isProblem(storage)) return { obc: { ready: false, ...storage } };
  const via =
    obc.endpoint && obc.endpoint.source !== "invalid" ? ` (via ${obc.endpoint.what})` : "";
  return {
    storage,
    obc: {
      ready: true,
      reason: "ObcBound",
      message: `ObjectBucketClaim ${ref} is bound to bucket ${storage.bucket}${via}`,
    },
  };
}

/** The claim's storage at an endpoint devices can reach, or why there is none. */
function reachable(ref: string, storage: Storage, endpoint?: ClaimEndpoint): Storage | Problem {
  if (endpoint?.source === "invalid")
    return { reason: "InvalidModuleSetting", message: endpoint.message };
  if (endpoint) {
    const moved: Storage = { ...storage, endpoint: endpoint.url };
    delete moved.caBundle; // the claim's CA is for its in-cluster host
    if (endpoint.caBundle) moved.caBundle = endpoint.caBundle;
    return moved;
  }
  const host = new URL(storage.endpoint).hostname;
  if (!isInClusterHost(host)) return storage;
  return {
    reason: "ObcEndpointInCluster",
    message: `ConfigMap ${ref}: BUCKET_HOST "${host}" is an in-cluster Service name that devices cannot reach: set the module setting EDGE_UPLOAD_OBC_ENDPOINT (and EDGE_UPLOAD_OBC_CA) to the endpoint devices use for claim buckets`,
  };
}

function fromExternal(
  namespace: string,
  external: NonNullable<StorageInputs["external"]>,
): Storage | Problem {
  const { configMapName, secretName } = external;
  if (!configMapName)
    return {
      reason: "ConfigMapNotSet",
      message: "spec.storage.s3.configMapName is not set (secretName is)",
    };
  if (!secretName)
    return {
      reason: "SecretNotSet",
      message: "spec.storage.s3.secretName is not set (configMapName is)",
    };
  if (!external.configMap)
    return {
      reason: "ConfigMapNotFound",
      message: `ConfigMap ${namespace}/${configMapName} (spec.storage.s3.configMapName) does not exist`,
    };
  if (!external.secret)
    return {
      reason: "SecretNotFound",
      message: `Secret ${namespace}/${secretName} (spec.storage.s3.secretName) does not exist`,
    };
  return storageFromKeys(
    "external",
    { ref: `${namespace}/${configMapName}`, data: external.configMap },
    { ref: `${namespace}/${secretName}`, data: external.secret },
  );
}

export function resolveStorage(inputs: StorageInputs): StorageResolution {
  const ocs = fromObc(inputs.namespace, inputs.obc);
  if (ocs.storage) return { storage: ocs.storage, obc: ocs.obc };
  const wantsExternal =
    inputs.external && (inputs.external.configMapName || inputs.external.secretName);
  if (wantsExternal) {
    const external = fromExternal(inputs.namespace, inputs.external!);
    if (isProblem(external)) return { problem: external, obc: ocs.obc };
    return { storage: external, obc: ocs.obc };
  }
  if (ocs.obc) {
    // Only OCS is wanted and it is not usable (yet): a problem, so a working config is kept.
    return { problem: { reason: ocs.obc.reason, message: ocs.obc.message }, obc: ocs.obc };
  }
  return { storage: null };
}

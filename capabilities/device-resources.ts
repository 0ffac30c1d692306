/**
 * The objects the module keeps per device, all owned by the EdgeDevice (garbage-collected with
 * it) except the ObjectBucketClaim, which is never deleted: uploaded data is the user's. Pure.
 */
import { createHash } from "node:crypto";
import {
  boundedName,
  DEVICE_CONFIG_KEY,
  deviceConfigSecretName,
  deviceStem,
  type DeviceConfig,
} from "../agent/config/device-config";

export const MANAGED_BY = { "app.kubernetes.io/managed-by": "edge-data-upload" };
export const DEVICE_LABEL = "edge-data-upload.project-flotta.io/device";
/** The device's full name, on every object the module makes for it (its label may be shortened). */
export const DEVICE_ANNOTATION = "edge-data-upload.project-flotta.io/device-name";

/** The device label's value: the name, or a shortened one past a label value's 63 characters. */
export const deviceLabelValue = (device: string) => boundedName(device, "", 63);
/** On access objects: a digest of what the module applied, so an upgrade that changes it shows. */
export const APPLIED_ANNOTATION = "edge-data-upload.project-flotta.io/applied";
/** The field manager of the module's server-side applies (kubernetes-fluent-client's). */
export const FIELD_MANAGER = "pepr";

export interface OwnerDevice {
  namespace: string;
  name: string;
  uid: string;
}

/** Name of the device's ServiceAccount, Role and RoleBinding (its config Secret's, and `-agent`). */
export const deviceAccessName = (device: string) => `${deviceStem(device)}-data-upload-agent`;

function meta(device: OwnerDevice, name: string) {
  return {
    name,
    namespace: device.namespace,
    labels: { ...MANAGED_BY, [DEVICE_LABEL]: deviceLabelValue(device.name) },
    annotations: { [DEVICE_ANNOTATION]: device.name },
    ownerReferences: [
      {
        apiVersion: "management.project-flotta.io/v1alpha1",
        kind: "EdgeDevice",
        name: device.name,
        uid: device.uid,
        controller: true,
      },
    ],
  };
}

export function configSecret(device: OwnerDevice, config: DeviceConfig) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(device, deviceConfigSecretName(device.name)),
    type: "Opaque",
    data: { [DEVICE_CONFIG_KEY]: Buffer.from(JSON.stringify(config)).toString("base64") },
  };
}

/** The object with APPLIED_ANNOTATION set to a digest of the rest of it. */
function withDigest<T extends { metadata: object }>(
  obj: T,
): T & { metadata: { annotations: Record<string, string> } } {
  const sum = createHash("sha256").update(JSON.stringify(obj)).digest("hex").slice(0, 16);
  const annotations = { ...(obj.metadata as { annotations?: object }).annotations };
  return {
    ...obj,
    metadata: { ...obj.metadata, annotations: { ...annotations, [APPLIED_ANNOTATION]: sum } },
  };
}

/**
 * The device's ServiceAccount, Role and RoleBinding. The Role grants its config Secret only
 * while that name is the module's (`ownsConfigSecret`): never someone else's Secret of that name.
 */
export function deviceAccess(device: OwnerDevice, ownsConfigSecret = true) {
  const name = deviceAccessName(device.name);
  const configSecretRule = {
    apiGroups: [""],
    resources: ["secrets"],
    resourceNames: [deviceConfigSecretName(device.name)],
    verbs: ["get", "watch"], // read it, and watch it by name,
  };
  return {
    serviceAccount: withDigest({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: meta(device, name),
    }),
    role: withDigest({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(device, name),
      rules: [
        ...(ownsConfigSecret ? [configSecretRule] : []),
        {
          apiGroups: ["management.project-flotta.io"],
          resources: ["edgedevices"],
          resourceNames: [device.name],
          verbs: ["get"],
        },
        {
          apiGroups: ["management.project-flotta.io"],
          resources: ["edgedevices/status"],
          resourceNames: [device.name],
          verbs: ["get", "patch"],
        },
        // The agent renews its own token before it expires (TokenRequest for this account only).
        {
          apiGroups: [""],
          resources: ["serviceaccounts/token"],
          resourceNames: [name],
          verbs: ["create"],
        },
      ],
    }),
    roleBinding: withDigest({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(device, name),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace: device.namespace }],
    }),
  };
}

/**
 * Whether an access object must be applied: it is missing; or it changed since the module
 * applied it (`appliedVersion`, known in this process) and either another field manager wrote
 * it or it is not what this module version applies (the digest).
 */
export function accessNeedsApply(
  existing:
    | { version?: string; annotations?: Record<string, string>; managers: string[] }
    | undefined,
  desired: { metadata: { annotations: Record<string, string> } },
  appliedVersion: string | undefined,
): boolean {
  if (!existing) return true;
  if (appliedVersion !== undefined && existing.version === appliedVersion) return false;
  if (
    existing.annotations?.[APPLIED_ANNOTATION] !== desired.metadata.annotations[APPLIED_ANNOTATION]
  )
    return true;
  return existing.managers.some(m => m !== FIELD_MANAGER);
}

export function bucketClaim(device: { namespace: string; name: string }, storageClassName: string) {
  return {
    apiVersion: "objectbucket.io/v1alpha1",
    kind: "ObjectBucketClaim",
    metadata: {
      name: device.name,
      namespace: device.namespace,
      labels: { ...MANAGED_BY, [DEVICE_LABEL]: deviceLabelValue(device.name) },
      annotations: { [DEVICE_ANNOTATION]: device.name },
    },
    spec: { generateBucketName: device.name, storageClassName },
  };
}

interface Meta {
  metadata?: {
    name?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    ownerReferences?: { uid?: string }[];
  };
}

/**
 * An object with one of the module's names for this device that the module does not own (no
 * owner reference to the device, no managed-by and device labels): named as "Kind ns/name", for
 * a NameConflict condition. The module never takes such an object over. Undefined when `obj` is
 * absent or ours.
 */
export function foreignObject(
  kindName: string,
  obj: Meta | undefined,
  device: OwnerDevice,
): string | undefined {
  if (!obj) return undefined;
  const m = obj.metadata ?? {};
  const ownerRef = m.ownerReferences?.some(r => r.uid === device.uid);
  const labelled =
    m.labels?.["app.kubernetes.io/managed-by"] === MANAGED_BY["app.kubernetes.io/managed-by"] &&
    m.labels?.[DEVICE_LABEL] === deviceLabelValue(device.name);
  return ownerRef || labelled ? undefined : `${kindName} ${device.namespace}/${m.name}`;
}

/**
 * A device's own identity for tests of the agent's Kubernetes side: a ServiceAccount whose
 * Role can read the device's config Secret and patch the device's status, and a kubeconfig
 * minted from a TokenRequest with the cluster CA, as a device would be given.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { load } from "js-yaml";
import { deviceConfigSecretName, type DeviceConfigInput } from "../../agent/config/device-config";
import { testEnv } from "./env";
import { eventually } from "./eventually";
import { kubectlOk } from "./kubectl";

export function grantDeviceAccess(namespace: string, device: string): void {
  const secret = deviceConfigSecretName(device);
  kubectlOk(["apply", "-n", namespace, "-f", "-"], {
    input: `
apiVersion: v1
kind: ServiceAccount
metadata: { name: ${device}-agent }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: ${device}-agent }
rules:
  - { apiGroups: [""], resources: [secrets], resourceNames: [${secret}], verbs: [get, watch] }
  - { apiGroups: [management.project-flotta.io], resources: [edgedevices, edgedevices/status], resourceNames: [${device}], verbs: [get, patch] }
  - { apiGroups: [""], resources: [serviceaccounts/token], resourceNames: [${device}-agent], verbs: [create] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: ${device}-agent }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: ${device}-agent }
subjects: [{ kind: ServiceAccount, name: ${device}-agent, namespace: ${namespace} }]
`,
  });
}

/** Writes the device's config Secret, as the module would, with `storage` and one workload. */
export function putConfigSecret(
  namespace: string,
  device: string,
  storage: DeviceConfigInput["storage"],
): void {
  const config: DeviceConfigInput = {
    version: 1,
    device: { namespace, name: device },
    storage,
    workloads: [{ name: "os-stats", paths: [{ source: "stats", target: "statistics" }] }],
  };
  kubectlOk(["apply", "-n", namespace, "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: deviceConfigSecretName(device) },
      stringData: { "config.json": JSON.stringify(config) },
    }),
  });
}

/** Writes a kubeconfig for the device's ServiceAccount to `path`. */
export function writeDeviceKubeconfig(
  path: string,
  namespace: string,
  device: string,
  duration = "1h",
  /** Another address for the API server (a proxy in front of it). */
  server?: string,
): void {
  const admin = load(readFileSync(testEnv.kubeconfig, "utf8")) as {
    clusters: { cluster: Record<string, string> }[];
  };
  const token = kubectlOk([
    "create",
    "token",
    `${device}-agent`,
    "-n",
    namespace,
    `--duration=${duration}`,
  ]).trim();
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "edge", cluster: { ...admin.clusters[0].cluster, ...(server ? { server } : {}) } },
    ],
    users: [{ name: device, user: { token } }],
    contexts: [{ name: "device", context: { cluster: "edge", user: device, namespace } }],
    "current-context": "device",
  };
  writeFileSync(path, JSON.stringify(kubeconfig), { mode: 0o600 });
}

/**
 * A namespace of its own with EdgeDevice `device` (no spec: nothing for a module to do) and its
 * access, for an agent that runs with the device's token. The CRDs are applied first.
 */
export function deviceNamespace(namespace: string, device: string): void {
  kubectlOk(["apply", "-f", "manifests/crds/"]);
  kubectlOk(["create", "namespace", namespace]);
  kubectlOk(["apply", "-n", namespace, "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "management.project-flotta.io/v1alpha1",
      kind: "EdgeDevice",
      metadata: { name: device },
      spec: {},
    }),
  });
  grantDeviceAccess(namespace, device);
}

/** Waits until the agent has reported an upload into the EdgeDevice's status; its time. */
export function reportedUpload(namespace: string, device: string, timeoutMs = 30_000) {
  return eventually(
    "the agent's report in the EdgeDevice status",
    () =>
      kubectlOk([
        "get",
        "edgedevice",
        device,
        "-n",
        namespace,
        "-o",
        "jsonpath={.status.dataUpload.lastUploadTime}",
      ]) || undefined,
    timeoutMs,
  );
}

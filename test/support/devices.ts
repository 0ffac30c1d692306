/** Reading what the module wrote for a device: its config Secret, conditions and status. */
import {
  deviceConfigSecretName,
  parseDeviceConfigJson,
  type DeviceConfig,
} from "../../agent/config/device-config";
import type { EdgeDevice } from "../../capabilities/generated/edgedevice-v1alpha1";
import { testEnv } from "./env";
import { eventually } from "./eventually";
import { kubectl, kubectlJson, kubectlOk } from "./kubectl";

export function deviceConfig(ns: string, device: string): DeviceConfig | undefined {
  const result = kubectl([
    "get",
    "secret",
    deviceConfigSecretName(device),
    "-n",
    ns,
    "-o",
    "jsonpath={.data.config\\.json}",
  ]);
  if (result.status !== 0 || !result.stdout) return undefined;
  const parsed = parseDeviceConfigJson(Buffer.from(result.stdout, "base64").toString("utf8"));
  if (!parsed.ok) throw new Error(`the module wrote an invalid config: ${parsed.error}`);
  return parsed.value;
}

export function device(ns: string, name: string): EdgeDevice {
  return kubectlJson<EdgeDevice>(["get", "edgedevice", name, "-n", ns]);
}

export function condition(ns: string, name: string, type = "Ready") {
  return device(ns, name).status?.conditions?.find(c => c.type === type);
}

/** Waits (10 s by default) until the device's config satisfies `check`. */
export function configWhere(
  ns: string,
  name: string,
  what: string,
  check: (c: DeviceConfig) => boolean,
  timeoutMs = 10_000,
) {
  return eventually(
    `${ns}/${name} config: ${what}`,
    () => {
      const config = deviceConfig(ns, name);
      return config && check(config) ? config : undefined;
    },
    timeoutMs,
  );
}

export function conditionWhere(
  ns: string,
  name: string,
  reason: string,
  type = "Ready",
  timeoutMs = 10_000,
) {
  return eventually(
    `${ns}/${name} condition ${type} reason ${reason}`,
    () => {
      const c = condition(ns, name, type);
      return c?.reason === reason ? c : undefined;
    },
    timeoutMs,
  );
}

export function applyYaml(ns: string, yaml: string): void {
  kubectlOk(["apply", "-n", ns, "-f", "-"], { input: yaml });
}

export function s3Objects(
  ns: string,
  name: string,
  bucket: string,
  endpoint: URL,
  creds: { accessKeyId: string; secretAccessKey: string },
  extra = "",
): string {
  return `
apiVersion: v1
kind: ConfigMap
metadata: { name: ${name} }
data: { BUCKET_HOST: "${endpoint.hostname}", BUCKET_PORT: "${endpoint.port}", BUCKET_NAME: ${bucket}, BUCKET_REGION: us-east-1 }
---
apiVersion: v1
kind: Secret
metadata: { name: ${name} }
stringData: { AWS_ACCESS_KEY_ID: ${creds.accessKeyId}, AWS_SECRET_ACCESS_KEY: ${creds.secretAccessKey}${extra} }
`;
}

/** An EdgeWorkload for device cam-1 with this pod spec and these data paths (YAML flow). */
export const workloadYaml = (name: string, podSpec: string, paths: string) => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: { name: ${name} }
spec:
  device: cam-1
  type: pod
  pod: { spec: ${podSpec} }
  data: { paths: ${paths} }
`;

/** A new namespace holding ConfigMap and Secret `ext` for external storage in bucket `ext-bucket`. */
export function namespaceWithExternalStorage(ns: string): void {
  kubectlOk(["create", "namespace", ns]);
  const s3 = testEnv.s3;
  applyYaml(ns, s3Objects(ns, "ext", "ext-bucket", new URL(s3.endpoint), s3));
}

/**
 * The few Kubernetes API calls the agent makes, with its own device credentials: read its
 * config Secret, and merge-patch its own EdgeDevice's status. Plain HTTPS: the agent ships
 * without a Kubernetes client library.
 */
import { Agent, request } from "node:https";
import type { KubeConnection } from "./kubeconfig";

export class KubeError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface DeviceRef {
  namespace: string;
  name: string;
}

export class DeviceApi {
  private readonly agent: Agent;

  constructor(private connection: KubeConnection) {
    this.agent = new Agent({
      keepAlive: true,
      ca: connection.ca,
      cert: connection.cert,
      key: connection.key,
    });
  }

  private call(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.connection.token?.();
    if (token) headers.Authorization = `Bearer ${token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload) headers["Content-Type"] = contentType;
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.connection.server}${path}`,
        { method, headers, agent: this.agent, timeout: 30_000 },
        res => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () =>
        req.destroy(new Error(`no answer from ${this.connection.server} in 30 s`)),
      );
      req.on("error", err =>
        reject(
          new KubeError(
            `cannot reach the Kubernetes API at ${this.connection.server}: ${err.message}`,
          ),
        ),
      );
      req.end(payload);
    });
  }

  private explain(status: number, json: unknown, what: string): KubeError {
    const message = (json as { message?: string })?.message;
    if (status === 401)
      return new KubeError(
        `${what}: the device token was refused (expired or revoked); mint a new device kubeconfig`,
        401,
      );
    if (status === 403)
      return new KubeError(`${what}: forbidden${message ? ` (${message})` : ""}`, 403);
    return new KubeError(`${what}: HTTP ${status}${message ? ` (${message})` : ""}`, status);
  }

  /** The Secret's data, decoded; undefined when it does not exist (yet). */
  async getSecretData(
    namespace: string,
    name: string,
  ): Promise<{ resourceVersion: string; data: Record<string, string> } | undefined> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
    const { status, json } = await this.call("GET", path);
    if (status === 404) return undefined;
    if (status !== 200) throw this.explain(status, json, `reading Secret ${namespace}/${name}`);
    const secret = json as { metadata: { resourceVersion: string }; data?: Record<string, string> };
    const data: Record<string, string> = {};
    for (const [key, value] of Object.entries(secret.data ?? {}))
      data[key] = Buffer.from(value, "base64").toString("utf8");
    return { resourceVersion: secret.metadata.resourceVersion, data };
  }

  /** From now on, authenticate with `token` (a renewed one). */
  useToken(token: string): void {
    this.connection = { ...this.connection, token: () => token };
  }

  /** A new token for a ServiceAccount (TokenRequest): the device's own, to renew it. */
  async requestToken(
    namespace: string,
    serviceAccount: string,
    expirationSeconds: number,
  ): Promise<string> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`;
    const body = {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds },
    };
    const { status, json } = await this.call("POST", path, body);
    if (status !== 201 && status !== 200)
      throw this.explain(
        status,
        json,
        `renewing the token of ServiceAccount ${namespace}/${serviceAccount}`,
      );
    const token = (json as { status?: { token?: string } })?.status?.token;
    if (!token) throw new KubeError("the TokenRequest answer has no token");
    return token;
  }

  /**
   * Watches one Secret by name (what the device Role allows) from `resourceVersion` until the
   * server ends the watch (after `timeoutSeconds`), `signal` aborts, or the connection drops.
   * Calls `changed` on every event of the Secret, `progress` with the version of every event and
   * bookmark (where to resume). Returns "gone" when the version is too old (410): read the
   * Secret again and watch from its version.
   */
  watchSecret(
    namespace: string,
    name: string,
    resourceVersion: string,
    on: { changed(): void; progress(resourceVersion: string): void },
    signal: AbortSignal,
    timeoutSeconds = 300,
  ): Promise<"ended" | "gone"> {
    const query = [
      "watch=1",
      "allowWatchBookmarks=true",
      `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`,
      `timeoutSeconds=${timeoutSeconds}`,
      ...(resourceVersion ? [`resourceVersion=${encodeURIComponent(resourceVersion)}`] : []),
    ].join("&");
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets?${query}`;
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.connection.token?.();
    if (token) headers.Authorization = `Bearer ${token}`;
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.connection.server}${path}`,
        { method: "GET", headers, agent: this.agent, signal },
        res => {
          if (res.statusCode === 410) return void (res.resume(), resolve("gone"));
          if (res.statusCode !== 200) {
            res.resume();
            return reject(
              this.explain(res.statusCode ?? 0, undefined, `watching Secret ${namespace}/${name}`),
            );
          }
          let buffered = "";
          res.on("data", (chunk: Buffer) => {
            buffered += chunk.toString("utf8");
            let newline: number;
            while ((newline = buffered.indexOf("\n")) >= 0) {
              const line = buffered.slice(0, newline);
              buffered = buffered.slice(newline + 1);
              const event = JSON.parse(line) as {
                type?: string;
                object?: { code?: number; metadata?: { resourceVersion?: string } };
              };
              if (event.type === "ERROR") {
                if (event.object?.code === 410) return void (req.destroy(), resolve("gone"));
                return void (req.destroy(),
                reject(new KubeError(`watching Secret ${namespace}/${name}: error event`)));
              }
              const version = event.object?.metadata?.resourceVersion;
              if (version) on.progress(version);
              if (event.type !== "BOOKMARK") on.changed();
            }
          });
          res.on("end", () => resolve("ended"));
          res.on("error", reject);
          res.on("aborted", () => reject(new KubeError("the watch connection was cut")));
        },
      );
      req.on("error", err =>
        reject(
          signal.aborted
            ? new KubeError("stopped")
            : new KubeError(
                `cannot reach the Kubernetes API at ${this.connection.server}: ${err.message}`,
              ),
        ),
      );
      req.end();
    });
  }

  /** Merge-patches status.<field> of the device, leaving the module's status fields alone. */
  async patchDeviceStatus(device: DeviceRef, status: Record<string, unknown>): Promise<void> {
    const path = `/apis/management.project-flotta.io/v1alpha1/namespaces/${encodeURIComponent(device.namespace)}/edgedevices/${encodeURIComponent(device.name)}/status`;
    const { status: code, json } = await this.call(
      "PATCH",
      path,
      { status },
      "application/merge-patch+json",
    );
    if (code !== 200)
      throw this.explain(
        code,
        json,
        `updating EdgeDevice ${device.namespace}/${device.name} status`,
      );
  }
}

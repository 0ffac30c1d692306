/**
 * The module's requests to the API server, over one keep-alive connection pool. (Pepr's K8s()
 * client, kubernetes-fluent-client, opens a new TLS connection for every request and keeps each
 * open for ten minutes: at fleet scale that is thousands of sockets and hundreds of MB.) Errors
 * are thrown as kubernetes-fluent-client's are ({ status, data }), so kube-errors.ts reads both.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { Agent, request, type RequestOptions } from "node:https";
import type { IncomingMessage } from "node:http";
import { FIELD_MANAGER } from "./device-resources";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
}

/** Plural resource names of the kinds the module writes. */
const PLURALS: Record<string, string> = {
  Secret: "secrets",
  ConfigMap: "configmaps",
  ServiceAccount: "serviceaccounts",
  Role: "roles",
  RoleBinding: "rolebindings",
  Event: "events",
  EdgeDevice: "edgedevices",
  ObjectBucketClaim: "objectbucketclaims",
};

/** The path of an object (or, without a name, of its kind's collection in its namespace). */
export function objectPath(obj: KubeObject, name = obj.metadata?.name): string {
  const [group, version] = obj.apiVersion!.includes("/")
    ? obj.apiVersion!.split("/")
    : ["", obj.apiVersion!];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const plural = PLURALS[obj.kind!];
  if (!plural) throw new Error(`no plural known for kind ${obj.kind}`);
  const ns = obj.metadata?.namespace
    ? `/namespaces/${encodeURIComponent(obj.metadata.namespace)}`
    : "";
  return `${base}${ns}/${plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

export class KubeApi {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });

  /** Loaded at the first request: `pepr build` and the admission process load this file too. */
  constructor(private kubeConfig?: KubeConfig) {}

  /** Opens a request; the caller reads the response (watches stream it). */
  async open(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<IncomingMessage> {
    this.kubeConfig ??= defaultKubeConfig();
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("no current cluster in the kubeconfig");
    const options: RequestOptions = { method, headers: { Accept: "application/json", ...headers } };
    await this.kubeConfig.applyToHTTPSOptions(options); // per request: tokens are rotated
    options.agent = this.agent;
    return new Promise((resolve, reject) => {
      const req = request(`${cluster.server}${path}`, options, resolve);
      req.on("error", reject);
      req.end(body);
    });
  }

  /** One request with a JSON answer; anything but 2xx throws { status, data }. */
  async call<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.open(
      method,
      path,
      contentType ? { "Content-Type": contentType } : {},
      body === undefined ? undefined : JSON.stringify(body),
    );
    let text = "";
    for await (const chunk of res) text += (chunk as Buffer).toString("utf8");
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = { message: text.slice(0, 200) };
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299)
      throw Object.assign(
        new Error(`HTTP ${status}: ${(data as { message?: string })?.message ?? ""}`.trim()),
        { status, data },
      );
    return data as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }

  /** Server-side apply, taking over fields other managers hold (force). */
  apply<T extends KubeObject>(obj: T): Promise<T> {
    return this.call<T>(
      "PATCH",
      `${objectPath(obj)}?fieldManager=${FIELD_MANAGER}&force=true`,
      obj,
      "application/apply-patch+yaml",
    );
  }

  /** A merge patch of the status subresource. */
  patchStatus<T extends KubeObject>(obj: T): Promise<T> {
    return this.call<T>("PATCH", `${objectPath(obj)}/status`, obj, "application/merge-patch+json");
  }

  create<T extends KubeObject>(obj: T): Promise<T> {
    return this.call<T>("POST", objectPath(obj, ""), obj);
  }
}

export function defaultKubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromDefault(); // KUBECONFIG, ~/.kube/config, or the pod's ServiceAccount
  return config;
}

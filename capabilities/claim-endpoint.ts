/**
 * Where devices reach claim buckets. NooBaa and Rook write an in-cluster Service as the claim's
 * BUCKET_HOST; a device outside the cluster can neither resolve nor trust it. In order:
 *   1. the module setting EDGE_UPLOAD_OBC_ENDPOINT (with EDGE_UPLOAD_OBC_CA);
 *   2. on OpenShift (route.openshift.io served), the `s3` Route in `openshift-storage`, trusted
 *      through the router CA (Secret `router-ca` in `openshift-ingress-operator`), as Flotta did;
 *   3. none: the claim's own host, which storage.ts refuses when it is in-cluster.
 * Discovery is looked up again at most once per resync period.
 */
import { GenericKind, RegisterKind } from "kubernetes-fluent-client";
import { K8s, kind } from "pepr";
import { ApiMissing, getOrUndefined } from "./kube-errors";
import type { ModuleSettings } from "./settings";
import type { ClaimEndpoint } from "./storage";

/** The part of OpenShift's Route the module reads (route.openshift.io/v1). */
export class Route extends GenericKind {
  spec?: { host?: string; tls?: { termination?: string } };
}
RegisterKind(Route, {
  group: "route.openshift.io",
  version: "v1",
  kind: "Route",
  plural: "routes",
});

export const S3_ROUTE = { namespace: "openshift-storage", name: "s3" };
export const ROUTER_CA = { namespace: "openshift-ingress-operator", name: "router-ca" };

/** The endpoint a Route gives: its host on the router's port (443 with TLS, else 80). */
export function routeEndpoint(
  route: Route | undefined,
  caBundle?: string,
): Extract<ClaimEndpoint, { url: string }> | undefined {
  const host = route?.spec?.host;
  if (!host) return undefined;
  const url = route?.spec?.tls ? `https://${host}:443` : `http://${host}:80`;
  return {
    source: "route",
    url,
    what: `Route ${S3_ROUTE.namespace}/${S3_ROUTE.name}`,
    ...(caBundle ? { caBundle } : {}),
  };
}

async function discover(): Promise<ClaimEndpoint | undefined> {
  let route: Route | undefined;
  try {
    route = await getOrUndefined(S3_ROUTE.name, () =>
      K8s(Route).InNamespace(S3_ROUTE.namespace).Get(S3_ROUTE.name),
    );
  } catch (err) {
    if (err instanceof ApiMissing) return undefined; // not OpenShift
    throw err;
  }
  if (!route?.spec?.host) return undefined;
  const ca = await getOrUndefined(ROUTER_CA.name, () =>
    K8s(kind.Secret).InNamespace(ROUTER_CA.namespace).Get(ROUTER_CA.name),
  );
  const pem = ca?.data?.["tls.crt"];
  return routeEndpoint(route, pem ? Buffer.from(pem, "base64").toString("utf8") : undefined);
}

export class ClaimEndpoints {
  private cached?: { at: number; endpoint: ClaimEndpoint | undefined };

  constructor(private readonly settings: ModuleSettings) {}

  async get(now = Date.now()): Promise<ClaimEndpoint | undefined> {
    const problem = this.settings.problems.find(p => /EDGE_UPLOAD_OBC_(ENDPOINT|CA)\b/.test(p));
    if (problem) return { source: "invalid", message: problem };
    if (this.settings.obcEndpoint)
      return {
        source: "setting",
        url: this.settings.obcEndpoint,
        what: "module setting EDGE_UPLOAD_OBC_ENDPOINT",
        ...(this.settings.obcCa ? { caBundle: this.settings.obcCa } : {}),
      };
    if (!this.cached || now - this.cached.at >= this.settings.resyncSeconds * 1000)
      this.cached = { at: now, endpoint: await discover() };
    return this.cached.endpoint;
  }
}

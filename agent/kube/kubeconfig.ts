/**
 * Reads what the agent needs from a kubeconfig (YAML or JSON): the current context's server,
 * its CA, and a bearer token (inline or a file, re-read on every request so that a rotated
 * token is picked up) or a client certificate. Pure apart from reading referenced files.
 */
import { load } from "js-yaml";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

export interface KubeConnection {
  server: string;
  ca?: string;
  token?: () => string;
  /** The token written in the kubeconfig itself (not a tokenFile): the one the agent renews. */
  inlineToken?: string;
  cert?: string;
  key?: string;
}

type Named<T> = { name: string } & T;
interface RawKubeconfig {
  "current-context"?: string;
  contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
  clusters?: Named<{ cluster?: Record<string, string> }>[];
  users?: Named<{ user?: Record<string, string> }>[];
}

export function parseKubeconfig(text: string, baseDir: string): KubeConnection {
  const raw = load(text) as RawKubeconfig | undefined;
  if (!raw || typeof raw !== "object") throw new Error("kubeconfig is empty or not a mapping");
  const contextName = raw["current-context"];
  const context =
    raw.contexts?.find(c => c.name === contextName)?.context ?? raw.contexts?.[0]?.context;
  if (!context) throw new Error("kubeconfig has no context");
  const cluster = raw.clusters?.find(c => c.name === context.cluster)?.cluster;
  if (!cluster?.server) throw new Error(`kubeconfig: cluster "${context.cluster}" has no server`);
  const user = raw.users?.find(u => u.name === context.user)?.user ?? {};

  const file = (path: string) => readFileSync(resolve(baseDir, path), "utf8");
  const decoded = (data?: string) =>
    data ? Buffer.from(data, "base64").toString("utf8") : undefined;
  const ca =
    decoded(cluster["certificate-authority-data"]) ??
    (cluster["certificate-authority"] ? file(cluster["certificate-authority"]) : undefined);
  let token: (() => string) | undefined;
  if (user.token) {
    const value = user.token;
    token = () => value;
  } else if (user.tokenFile) {
    const path = user.tokenFile;
    token = () => file(path).trim();
  }
  const cert =
    decoded(user["client-certificate-data"]) ??
    (user["client-certificate"] ? file(user["client-certificate"]) : undefined);
  const key =
    decoded(user["client-key-data"]) ?? (user["client-key"] ? file(user["client-key"]) : undefined);
  if (!token && !(cert && key))
    throw new Error(
      `kubeconfig: user "${context.user}" has neither a token nor a client certificate`,
    );
  return {
    server: cluster.server.replace(/\/+$/, ""),
    ca,
    token,
    inlineToken: user.token || undefined,
    cert,
    key,
  };
}

export function readKubeconfig(path: string): KubeConnection {
  return parseKubeconfig(readFileSync(path, "utf8"), dirname(resolve(path)));
}

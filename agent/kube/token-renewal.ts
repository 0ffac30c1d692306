/**
 * Keeps the device's token from expiring under a long-running agent: when less than a third of
 * its lifetime is left (or --token-renew-before), asks the API server for a new token of the
 * same lifetime for its own ServiceAccount (the module's Role allows exactly that) and writes it
 * into the kubeconfig, atomically and mode 0600, so a restart uses it too. A kubeconfig with a
 * tokenFile is renewed by whoever writes that file, not here. Failures are logged (never thrown)
 * and retried before the next pass; the old token keeps working until it expires.
 */
import { load } from "js-yaml";
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../atomic-file";
import { registerSecret } from "../log";
import type { Logger } from "../sync/errors";
import type { DeviceApi } from "./client";
import { renewalDue, tokenClaims, type TokenClaims } from "./token";

interface KubeconfigUsers {
  "current-context"?: string;
  contexts?: { name: string; context?: { user?: string } }[];
  users?: { name: string; user?: Record<string, unknown> }[];
}

export class TokenRenewal {
  /** The token in use, known from the start: checking whether it is due needs no I/O. */
  private claims: TokenClaims | undefined;

  constructor(
    private readonly api: DeviceApi,
    private readonly kubeconfigPath: string,
    private readonly log: Logger,
    inlineToken: string | undefined,
    private readonly renewBeforeSeconds?: number,
  ) {
    // A tokenFile or a client certificate: not ours to renew.
    this.claims = inlineToken ? tokenClaims(inlineToken) : undefined;
  }

  async renewIfDue(): Promise<void> {
    const claims = this.claims;
    if (!claims || !renewalDue(claims, Date.now() / 1000, this.renewBeforeSeconds)) return;
    try {
      const renewed = await this.api.requestToken(
        claims.namespace,
        claims.serviceAccount,
        claims.expiresAt - claims.issuedAt,
      );
      registerSecret(renewed);
      await this.writeToKubeconfig(renewed);
      this.api.useToken(renewed);
      this.claims = tokenClaims(renewed);
      const expires = this.claims?.expiresAt;
      this.log.info("renewed the device token", {
        expires: expires ? new Date(expires * 1000).toISOString() : undefined,
      });
    } catch (err) {
      const left = Math.round(claims.expiresAt - Date.now() / 1000);
      this.log.warn("could not renew the device token; will try again", {
        error: (err as Error).message,
        secondsLeft: left,
      });
    }
  }

  /** Puts the token in place of the current user's, so that a restart uses it too. */
  private async writeToKubeconfig(token: string): Promise<void> {
    const kubeconfig = load(await readFile(this.kubeconfigPath, "utf8")) as KubeconfigUsers;
    const contextName = kubeconfig["current-context"];
    const userName = (
      kubeconfig.contexts?.find(c => c.name === contextName) ?? kubeconfig.contexts?.[0]
    )?.context?.user;
    const user = kubeconfig.users?.find(u => u.name === userName)?.user;
    if (!user) throw new Error(`kubeconfig ${this.kubeconfigPath} has no user "${userName}"`);
    user.token = token;
    await writeFileAtomic(this.kubeconfigPath, JSON.stringify(kubeconfig, null, 2));
  }
}

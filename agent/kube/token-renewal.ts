/**
 * Keeps the device's token from expiring under a long-running agent: when less than a third of
 * its lifetime is left (or --token-renew-before), asks the API server for a new token of the
 * same lifetime for its own ServiceAccount (the module's Role allows exactly that) and keeps it
 * in its state dir (`token`, atomically, mode 0600), so a restart uses it too. The kubeconfig is
 * never written: it lives in /etc/flotta-agent, which is root's (the agent must not be able to
 * change what root reads and writes there). A kubeconfig with a tokenFile is renewed by whoever
 * writes that file, not here. Failures are logged (never thrown)
 * and retried before the next pass; the old token keeps working until it expires.
 */
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../atomic-file";
import { registerSecret } from "../log";
import type { Logger } from "../sync/errors";
import type { DeviceApi } from "./client";
import { renewalDue, tokenClaims, type TokenClaims } from "./token";

export class TokenRenewal {
  /** The token in use, known from the start: checking whether it is due needs no I/O. */
  private claims: TokenClaims | undefined;

  constructor(
    private readonly api: DeviceApi,
    /** Where the renewed token is kept (`<state dir>/token`). */
    private readonly tokenPath: string,
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
      await writeFileAtomic(this.tokenPath, renewed);
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
}

/**
 * The token renewed by an earlier run (kept at `path`), when it is for the kubeconfig token's
 * ServiceAccount and was issued no earlier; else undefined, and the kubeconfig's is used (a newly
 * minted kubeconfig always wins over a token renewed from an older one).
 */
export async function renewedToken(path: string, inline: string): Promise<string | undefined> {
  const stored = (await readFile(path, "utf8").catch(() => "")).trim();
  const mine = stored ? tokenClaims(stored) : undefined;
  const theirs = tokenClaims(inline);
  if (!mine || !theirs) return undefined;
  const same = mine.namespace === theirs.namespace && mine.serviceAccount === theirs.serviceAccount;
  return same && mine.issuedAt >= theirs.issuedAt && mine.expiresAt > Date.now() / 1000
    ? stored
    : undefined;
}

/**
 * What the agent reads from its ServiceAccount token (a JWT) to renew it in time: when it was
 * issued, when it expires, and whose it is. Pure: the signature is the API server's business.
 */
export interface TokenClaims {
  issuedAt: number;
  expiresAt: number;
  namespace: string;
  serviceAccount: string;
}

export function tokenClaims(token: string): TokenClaims | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      iat?: number;
      exp?: number;
      "kubernetes.io"?: { namespace?: string; serviceaccount?: { name?: string } };
    };
    const k8s = claims["kubernetes.io"];
    if (!claims.iat || !claims.exp || !k8s?.namespace || !k8s.serviceaccount?.name)
      return undefined;
    return {
      issuedAt: claims.iat,
      expiresAt: claims.exp,
      namespace: k8s.namespace,
      serviceAccount: k8s.serviceaccount.name,
    };
  } catch {
    return undefined;
  }
}

/** True when less than `renewBeforeSeconds` (default: a third of the lifetime) remains. */
export function renewalDue(
  claims: TokenClaims,
  nowSeconds: number,
  renewBeforeSeconds?: number,
): boolean {
  const before = renewBeforeSeconds ?? (claims.expiresAt - claims.issuedAt) / 3;
  return claims.expiresAt - nowSeconds < before;
}

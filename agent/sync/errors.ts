/**
 * Errors where they arise, as rclone's fs/fserrors: one short, credential-free description of any
 * S3 or file error, and whether an error is the destination's as a whole (stop the pass) or one
 * file's (go on). The logger interface the agent's parts share lives here too.
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** The short, credential-free description of an S3 or file error. */
export function describeError(err: unknown): string {
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name && e.name !== "Error" ? e.name : e?.code;
  const text = [name, e?.message].filter(Boolean).join(": ") || String(err);
  return status ? `${text} (HTTP ${status})` : text;
}

/** Errors that say the destination as a whole is unusable, not one file. */
export function isDestinationError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const names = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "NoSuchBucket",
    "Forbidden",
  ];
  const codes = [
    "ECONNREFUSED",
    "ENOTFOUND",
    "EHOSTUNREACH",
    "ECONNRESET",
    "ETIMEDOUT",
    "EAI_AGAIN",
  ];
  return (
    names.includes(e?.name ?? "") ||
    codes.includes(e?.code ?? "") ||
    /certificate|self.signed|CERT_/i.test(String((err as Error)?.message ?? "")) ||
    e?.$metadata?.httpStatusCode === 403
  );
}

/**
 * The API server's audit log (hack/up.sh: ServiceAccounts' requests at Metadata level), for
 * tests that count what the module or an agent asked: take `auditMark()`, act, then read the
 * events since the mark.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { testEnv } from "./env";

export interface AuditEvent {
  verb: string;
  user: { username: string; extra?: Record<string, string[]> };
  userAgent?: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
}

const auditLog = () => join(testEnv.logDir, "audit.log");

/** Where the log ends now. */
export const auditMark = (): number => statSync(auditLog()).size;

/** The events written since `mark`. */
export function auditEventsSince(mark: number): AuditEvent[] {
  return readFileSync(auditLog())
    .subarray(mark)
    .toString("utf8")
    .split("\n")
    .filter(Boolean)
    .map(line => JSON.parse(line) as AuditEvent);
}

/**
 * JSON log lines on stderr, one object per line. Credentials never reach a line: the code logs
 * storage only as kind, endpoint and bucket, and every secret the agent learns (keys, tokens)
 * is registered here and replaced by "[redacted]" should it appear anyway.
 */
import type { Logger } from "./sync/errors";

export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];

const secrets = new Set<string>();

/** Values that must never be printed. Short values are skipped: they would blank ordinary words. */
export function registerSecret(...values: (string | undefined)[]): void {
  for (const value of values) if (value && value.length >= 6) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets)
    if (out.includes(secret)) out = out.split(secret).join("[redacted]");
  return out;
}

export function createLogger(
  level: LogLevel,
  write: (line: string) => void = l => process.stderr.write(l),
): Logger {
  const emit = (at: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[at] < RANK[level]) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level: at, msg, ...fields });
    write(`${redact(line)}\n`);
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
  };
}

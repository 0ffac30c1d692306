/**
 * The one place that turns a device config's storage into an S3 client. Every setting here is
 * one that S3-compatible servers need (see shared/field-notes.md):
 * - checksums only when an operation requires them: the SDK's default CRC32 trailer frames
 *   stream bodies as aws-chunked, which several servers reject or store verbatim;
 * - path-style addressing, since custom endpoints rarely have wildcard DNS;
 * - the config's CA bundle trusted in addition to the system CAs, never instead of them.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { rootCertificates } from "node:tls";
import type { Storage } from "../config/device-config";

export interface S3ClientOptions {
  /** Sockets per client; one upload part or small file uses one at a time. */
  maxSockets?: number;
  /** Attempts per request, including the first (the SDK retries with backoff and jitter). */
  maxAttempts?: number;
}

export type S3Target = Pick<Storage, "endpoint" | "region" | "accessKeyId" | "secretAccessKey"> &
  Partial<Pick<Storage, "caBundle" | "forcePathStyle">>;

export function createS3Client(target: S3Target, options: S3ClientOptions = {}): S3Client {
  const maxSockets = options.maxSockets ?? 64;
  const ca = target.caBundle ? [...rootCertificates, target.caBundle] : undefined;
  return new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    forcePathStyle: target.forcePathStyle ?? true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: options.maxAttempts ?? 5,
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets, ca }),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  });
}

/**
 * The one place that turns a device config's storage into an S3 client. Every setting here is
 * one that S3-compatible servers need (see shared/field-notes.md):
 * - checksums only when an operation requires them: the SDK's default CRC32 trailer frames
 *   stream bodies as aws-chunked, which several servers reject or store verbatim;
 * - path-style addressing, since custom endpoints rarely have wildcard DNS;
 * - the config's CA bundle trusted in addition to the system CAs, never instead of them;
 * - the resolved middleware cached per command (`cacheMiddleware`): resolving it again for every
 *   request was a fifth of the CPU of a small upload;
 * - over HTTPS, the payload is not hashed for the signature (`UNSIGNED-PAYLOAD`, as aws-cli
 *   does): TLS protects the bytes in transit, and small files carry a Content-MD5 the server
 *   checks. Over plain HTTP the signature covers the payload's SHA-256.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { createSecureContext, rootCertificates } from "node:tls";
import type { Storage } from "../config/device-config";
import { createLeanRequests, type PutObject, type UploadPart } from "./put-object";

export interface S3ClientOptions {
  /** Sockets per client; one upload part or small file uses one at a time. */
  maxSockets?: number;
  /** Attempts per request, including the first (the SDK retries with backoff and jitter). */
  maxAttempts?: number;
}

export type S3Target = Pick<Storage, "endpoint" | "region" | "accessKeyId" | "secretAccessKey"> &
  Partial<Pick<Storage, "caBundle" | "forcePathStyle">>;

/** The SDK client, and the lean PutObject and UploadPart (put-object.ts), on the same sockets. */
export interface S3Connection {
  client: S3Client;
  putObject: PutObject;
  uploadPart: UploadPart;
}

export function createS3Client(target: S3Target, options: S3ClientOptions = {}): S3Client {
  return connectS3(target, options).client;
}

export function connectS3(target: S3Target, options: S3ClientOptions = {}): S3Connection {
  const maxSockets = options.maxSockets ?? 64;
  // One secure context for every connection. Passing `ca` itself would make the https Agent
  // join the ~140 PEM certificates into its pool key on every request (a third of the CPU of
  // a small upload over TLS) and build a new context per connection.
  const secureContext = target.caBundle
    ? createSecureContext({ ca: [...rootCertificates, target.caBundle] })
    : undefined;
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets, secureContext });
  const maxAttempts = options.maxAttempts ?? 5;
  const client = new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    forcePathStyle: target.forcePathStyle ?? true,
    cacheMiddleware: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts,
    requestHandler: {
      httpAgent,
      httpsAgent,
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  });
  if (new URL(target.endpoint).protocol === "https:")
    client.middlewareStack.add(
      next => args => {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers) request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
        return next(args);
      },
      { step: "build", name: "edgeUnsignedPayload" },
    );
  const lean = createLeanRequests(target, {
    httpAgent,
    httpsAgent,
    maxAttempts,
    requestTimeoutMs: 120_000,
  });
  return { client, ...lean };
}

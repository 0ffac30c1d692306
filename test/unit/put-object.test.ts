import { test } from "uvu";
import * as assert from "uvu/assert";
import { SignatureV4 } from "@smithy/signature-v4";
import { createHash, createHmac } from "node:crypto";
import { encodeKey, isRetryable, S3RequestError, SigV4 } from "../../agent/s3/put-object";

const bytes = (d: string | ArrayBuffer | ArrayBufferView) =>
  typeof d === "string"
    ? d
    : ArrayBuffer.isView(d)
      ? Buffer.from(d.buffer, d.byteOffset, d.byteLength)
      : Buffer.from(d);

/** SHA-256 and its HMAC in the shape the SDK's signer takes. */
class Sha256 {
  private readonly h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret ? createHmac("sha256", bytes(secret)) : createHash("sha256");
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    this.h.update(bytes(data));
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
}

const target = {
  endpoint: "http://127.0.0.1:7070",
  region: "us-east-1",
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

for (const [what, query, sdkQuery] of [
  ["a PutObject", "", {}],
  ["an UploadPart", "partNumber=3&uploadId=a%2Fb%2Bc~d", { partNumber: "3", uploadId: "a/b+c~d" }],
] as const)
  test(`the lean signer signs ${what} as the SDK's SigV4 signer does`, async () => {
    const key = "frames/with space #?%+&'()*!/é/x.bin";
    const path = `/bucket/${encodeKey(key)}`;
    const amzDate = "20261128T120000Z";
    const headers: Record<string, string> = {
      host: "127.0.0.1:7070",
      "content-length": "4",
      "content-md5": "CY9rzUYh03PK3k6DJie09g==",
      "content-type": "application/octet-stream",
      "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
      "x-amz-date": amzDate,
    };
    const mine = new SigV4(target).authorization("PUT", path, query, headers, amzDate);
    const sdk = new SignatureV4({
      credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
      region: target.region,
      service: "s3",
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const signed = await sdk.sign(
      {
        method: "PUT",
        protocol: "http:",
        hostname: "127.0.0.1",
        port: 7070,
        path,
        headers: { ...headers },
        query: { ...sdkQuery },
      },
      { signingDate: new Date("2026-11-28T12:00:00Z") },
    );
    assert.is(mine, signed.headers.authorization);
  });

test("keys keep their slashes; everything else outside RFC 3986's unreserved set is escaped", () => {
  assert.is(encodeKey("a b/c+d/é!*"), "a%20b/c%2Bd/%C3%A9%21%2A");
});

test("what is tried again: network errors, 5xx, 429, throttling; not 403 or 404", () => {
  assert.ok(isRetryable(new S3RequestError("ECONNRESET", "reset", undefined, "ECONNRESET")));
  assert.ok(isRetryable(new S3RequestError("InternalError", "x", 500)));
  assert.ok(isRetryable(new S3RequestError("SlowDown", "x", 503)));
  assert.ok(isRetryable(new S3RequestError("HTTP429", "x", 429)));
  assert.not.ok(isRetryable(new S3RequestError("AccessDenied", "x", 403)));
  assert.not.ok(isRetryable(new S3RequestError("NoSuchBucket", "x", 404)));
});

test.run();

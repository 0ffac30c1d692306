import { test } from "uvu";
import * as assert from "uvu/assert";
import { renewalDue, tokenClaims } from "../../agent/kube/token";

const jwt = (claims: object) =>
  `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2ln`;
const claims = {
  iat: 1000,
  exp: 1000 + 3600,
  "kubernetes.io": { namespace: "edge", serviceaccount: { name: "cam-1-data-upload-agent" } },
};

test("claims of a ServiceAccount token", () => {
  assert.equal(tokenClaims(jwt(claims)), {
    issuedAt: 1000,
    expiresAt: 4600,
    namespace: "edge",
    serviceAccount: "cam-1-data-upload-agent",
  });
  assert.is(tokenClaims("not-a-jwt"), undefined);
  assert.is(tokenClaims(jwt({ iat: 1, exp: 2 })), undefined, "not a ServiceAccount token");
});

test("renewal is due in the last third of the lifetime, or the given margin", () => {
  const c = tokenClaims(jwt(claims))!;
  assert.not.ok(renewalDue(c, 1000 + 2399));
  assert.ok(renewalDue(c, 1000 + 2401));
  assert.ok(renewalDue(c, 1000, 3601));
  assert.not.ok(renewalDue(c, 1000, 60));
});

test.run();

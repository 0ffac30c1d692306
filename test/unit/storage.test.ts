import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  isInClusterHost,
  resolveStorage,
  storageFromKeys,
  type StorageInputs,
  type StorageResolution,
} from "../../capabilities/storage";

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const cm = (over: Record<string, string | undefined> = {}) =>
  Object.fromEntries(
    Object.entries({
      BUCKET_HOST: "s3.example.com",
      BUCKET_PORT: "443",
      BUCKET_NAME: "ext-bucket",
      BUCKET_REGION: "eu-west-1",
      ...over,
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
const secret = (over: Record<string, string | undefined> = {}) =>
  Object.fromEntries(
    Object.entries({
      AWS_ACCESS_KEY_ID: "AKID-value-1",
      AWS_SECRET_ACCESS_KEY: "secret-value-1",
      ...over,
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
const obcData = {
  BUCKET_HOST: "s3.openshift-storage.svc",
  BUCKET_PORT: "443",
  BUCKET_NAME: "cam-1-abc",
  BUCKET_REGION: "",
};
const bound = {
  state: "present" as const,
  name: "cam-1",
  phase: "Bound",
  configMap: obcData,
  secret: secret({ AWS_ACCESS_KEY_ID: "OBCKEY" }),
  endpoint: {
    source: "setting" as const,
    url: "https://s3.example.net:443",
    what: "module setting EDGE_UPLOAD_OBC_ENDPOINT",
  },
};
const inCluster = { ...bound, endpoint: undefined };
const external = {
  configMapName: "s3cfg",
  secretName: "s3creds",
  configMap: cm(),
  secret: secret(),
};
const inputs = (over: Partial<StorageInputs>): StorageInputs => ({
  namespace: "edge",
  obc: { state: "not-wanted" },
  ...over,
});

// [name, inputs, expected kind | null for none | problem reason, message fragment]
const table: [string, StorageInputs, string | null, RegExp?][] = [
  ["bound OBC wins over external", inputs({ obc: bound, external }), "ocs"],
  ["bound OBC alone", inputs({ obc: bound }), "ocs"],
  [
    "bound OBC at an in-cluster host, no way out",
    inputs({ obc: inCluster }),
    "ObcEndpointInCluster",
    /ConfigMap edge\/cam-1: BUCKET_HOST "s3\.openshift-storage\.svc" is an in-cluster Service name .* set the module setting EDGE_UPLOAD_OBC_ENDPOINT/,
  ],
  ["in-cluster claim, external fine: external", inputs({ obc: inCluster, external }), "external"],
  [
    "claim endpoint setting invalid",
    inputs({
      obc: {
        ...bound,
        endpoint: {
          source: "invalid",
          message: "module setting EDGE_UPLOAD_OBC_ENDPOINT is not a URL",
        },
      },
    }),
    "InvalidModuleSetting",
    /EDGE_UPLOAD_OBC_ENDPOINT is not a URL/,
  ],
  [
    "pending OBC: external meanwhile",
    inputs({
      obc: { ...bound, phase: "Pending", configMap: undefined, secret: undefined },
      external,
    }),
    "external",
  ],
  [
    "OBC just created: external meanwhile",
    inputs({ obc: { state: "missing", name: "cam-1" }, external }),
    "external",
  ],
  [
    "OBC API missing: external still works",
    inputs({ obc: { state: "api-missing" }, external }),
    "external",
  ],
  ["external alone", inputs({ external }), "external"],
  ["nothing configured: none", inputs({}), null],
  [
    "pending OBC alone is a problem",
    inputs({ obc: { ...bound, phase: "Pending" } }),
    "ObcPending",
    /ObjectBucketClaim edge\/cam-1 is Pending/,
  ],
  ["lost OBC alone", inputs({ obc: { ...bound, phase: "Lost" } }), "ObcLost", /is Lost/],
  ["failed OBC alone", inputs({ obc: { ...bound, phase: "Failed" } }), "ObcFailed", /is Failed/],
  [
    "OBC API missing alone",
    inputs({ obc: { state: "api-missing" } }),
    "ObcApiMissing",
    /objectbucket\.io API is not served/,
  ],
  [
    "bound OBC without its ConfigMap",
    inputs({ obc: { ...bound, configMap: undefined } }),
    "ConfigMapNotFound",
    /ConfigMap edge\/cam-1 of the bound/,
  ],
  [
    "bound OBC without its Secret",
    inputs({ obc: { ...bound, secret: undefined } }),
    "SecretNotFound",
    /Secret edge\/cam-1 of the bound/,
  ],
  [
    "bound OBC with a broken Secret, no external",
    inputs({ obc: { ...bound, secret: secret({ AWS_SECRET_ACCESS_KEY: "" }) } }),
    "KeyMissing",
    /Secret edge\/cam-1: key AWS_SECRET_ACCESS_KEY is missing or empty/,
  ],
  [
    "bound OBC broken, external fine: external",
    inputs({ obc: { ...bound, secret: undefined }, external }),
    "external",
  ],
  [
    "external ConfigMap missing",
    inputs({ external: { ...external, configMap: undefined } }),
    "ConfigMapNotFound",
    /ConfigMap edge\/s3cfg \(spec\.storage\.s3\.configMapName\) does not exist/,
  ],
  [
    "external Secret missing",
    inputs({ external: { ...external, secret: undefined } }),
    "SecretNotFound",
    /Secret edge\/s3creds \(spec\.storage\.s3\.secretName\) does not exist/,
  ],
  [
    "only a ConfigMap named",
    inputs({ external: { ...external, secretName: undefined } }),
    "SecretNotSet",
    /spec\.storage\.s3\.secretName is not set/,
  ],
  [
    "only a Secret named",
    inputs({ external: { ...external, configMapName: undefined } }),
    "ConfigMapNotSet",
    /spec\.storage\.s3\.configMapName is not set/,
  ],
  [
    "key missing",
    inputs({ external: { ...external, configMap: cm({ BUCKET_NAME: undefined }) } }),
    "KeyMissing",
    /ConfigMap edge\/s3cfg: key BUCKET_NAME is missing or empty/,
  ],
  [
    "key empty",
    inputs({ external: { ...external, secret: secret({ AWS_ACCESS_KEY_ID: " " }) } }),
    "KeyMissing",
    /Secret edge\/s3creds: key AWS_ACCESS_KEY_ID/,
  ],
  [
    "port not a number",
    inputs({ external: { ...external, configMap: cm({ BUCKET_PORT: "https" }) } }),
    "InvalidPort",
    /key BUCKET_PORT: "https" is not a port number \(1-65535\)/,
  ],
  [
    "port out of range",
    inputs({ external: { ...external, configMap: cm({ BUCKET_PORT: "65536" }) } }),
    "InvalidPort",
    /65536/,
  ],
  [
    "port zero",
    inputs({ external: { ...external, configMap: cm({ BUCKET_PORT: "0" }) } }),
    "InvalidPort",
    /"0"/,
  ],
  [
    "CA not PEM",
    inputs({ external: { ...external, secret: secret({ "tls.crt": "garbage" }) } }),
    "InvalidCA",
    /Secret edge\/s3creds: key tls\.crt is not a PEM/,
  ],
  [
    "host with a path",
    inputs({ external: { ...external, configMap: cm({ BUCKET_HOST: "s3.example.com/x" }) } }),
    "InvalidHost",
    /BUCKET_HOST/,
  ],
];

for (const [name, input, expected, message] of table) {
  test(name, () => {
    const result: StorageResolution = resolveStorage(input);
    if (expected === null) {
      assert.is(result.storage, null);
      assert.is(result.problem, undefined);
    } else if (expected === "ocs" || expected === "external") {
      assert.is(result.problem, undefined, JSON.stringify(result.problem));
      assert.is(result.storage?.kind, expected);
    } else {
      assert.is(result.storage, undefined);
      assert.is(result.problem?.reason, expected);
      assert.match(result.problem!.message, message!);
      assert.not.match(result.problem!.message, /value-1/, "a credential in a message");
    }
  });
}

test("OBC state is reported beside the storage used meanwhile", () => {
  const r = resolveStorage(inputs({ obc: { ...bound, phase: "Pending" }, external }));
  assert.equal(r.obc, {
    ready: false,
    reason: "ObcPending",
    message: "ObjectBucketClaim edge/cam-1 is Pending",
  });
  assert.is(resolveStorage(inputs({ obc: bound })).obc?.reason, "ObcBound");
});

test("a claim endpoint replaces the claim's host and CA: from the setting, from the Route", () => {
  const claimCa = secret({ AWS_ACCESS_KEY_ID: "OBCKEY", "tls.crt": CA });
  const viaSetting = resolveStorage(inputs({ obc: { ...bound, secret: claimCa } }));
  assert.is(viaSetting.storage?.endpoint, "https://s3.example.net:443");
  assert.is(viaSetting.storage?.caBundle, undefined, "the claim's CA is for its in-cluster host");
  assert.is(viaSetting.storage?.bucket, "cam-1-abc");
  assert.is(viaSetting.storage?.accessKeyId, "OBCKEY");
  assert.match(
    viaSetting.obc!.message,
    /bound to bucket cam-1-abc \(via module setting EDGE_UPLOAD_OBC_ENDPOINT\)/,
  );
  const routeCa = CA.replace("MIIB", "MIIC");
  const endpoint = {
    source: "route" as const,
    url: "https://s3-openshift-storage.apps.example:443",
    caBundle: routeCa,
    what: "Route openshift-storage/s3",
  };
  const viaRoute = resolveStorage(inputs({ obc: { ...bound, secret: claimCa, endpoint } }));
  assert.is(viaRoute.storage?.endpoint, "https://s3-openshift-storage.apps.example:443");
  assert.is(viaRoute.storage?.caBundle, routeCa);
});

test("in-cluster hosts are Service names", () => {
  for (const h of [
    "s3.openshift-storage.svc",
    "rook-ceph-rgw-store.rook-ceph.svc.cluster.local",
    "S3.NS.SVC.",
    "minio.ns.svc.cluster.local",
  ])
    assert.ok(isInClusterHost(h), h);
  for (const h of ["s3.example.com", "127.0.0.1", "localhost", "svc.example.com", "my-svc.com"])
    assert.not.ok(isInClusterHost(h), h);
});

test("endpoint scheme: explicit, port 443, a CA bundle, else http; region defaults", () => {
  const mk = (c: Record<string, string>, s = secret()) =>
    storageFromKeys("external", { ref: "e/c", data: c }, { ref: "e/s", data: s });
  assert.equal(mk(cm()), {
    kind: "external",
    endpoint: "https://s3.example.com:443",
    bucket: "ext-bucket",
    region: "eu-west-1",
    accessKeyId: "AKID-value-1",
    secretAccessKey: "secret-value-1",
    forcePathStyle: true,
  });
  assert.is(
    (mk(cm({ BUCKET_PORT: "9000" })) as { endpoint: string }).endpoint,
    "http://s3.example.com:9000",
  );
  assert.is(
    (mk(cm({ BUCKET_PORT: "9000" }), secret({ "tls.crt": CA })) as { endpoint: string }).endpoint,
    "https://s3.example.com:9000",
  );
  assert.is(
    (mk(cm({ BUCKET_HOST: "https://minio.lan", BUCKET_PORT: "9000" })) as { endpoint: string })
      .endpoint,
    "https://minio.lan:9000",
  );
  assert.is((mk(cm({ BUCKET_REGION: undefined })) as { region: string }).region, "us-east-1");
  assert.is((mk(cm(), secret({ "tls.crt": CA })) as { caBundle: string }).caBundle, CA);
});

test.run();

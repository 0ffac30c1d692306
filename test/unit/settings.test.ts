import { test } from "uvu";
import * as assert from "uvu/assert";
import { routeEndpoint, Route, ClaimEndpoints } from "../../capabilities/claim-endpoint";
import { parseEndpoint, readSettings, SETTINGS } from "../../capabilities/settings";

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

test("defaults, with no problems", () => {
  assert.equal(readSettings({}), {
    problems: [],
    obcStorageClass: "openshift-storage.noobaa.io",
    createObcDefault: "auto",
    resyncSeconds: 60,
    apiQps: 500,
    apiBurst: 1000,
    workers: 32,
  });
});

test("each setting is declared once, with its variable and help", () => {
  const names = SETTINGS.map(s => s.env);
  assert.equal(names.length, new Set(names).size);
  for (const s of SETTINGS) assert.ok(s.env.startsWith("EDGE_UPLOAD_") && s.help, s.env);
});

test("the claim endpoint: scheme and host, the port made explicit", () => {
  assert.is(parseEndpoint("https://s3.example.com"), "https://s3.example.com:443");
  assert.is(parseEndpoint("http://s3.example.com"), "http://s3.example.com:80");
  assert.is(parseEndpoint(" https://s3.example.com:8443/ "), "https://s3.example.com:8443");
  assert.is(parseEndpoint("http://127.0.0.1:7070"), "http://127.0.0.1:7070");
  for (const bad of [
    "s3.example.com",
    "ftp://s3.example.com",
    "https://s3.example.com/bucket",
    "https://u:p@s3.example.com",
    "https://h?x=1",
  ])
    assert.ok(parseEndpoint(bad).startsWith("!"), bad);
});

test("a bad value is a problem naming the variable; the default stays", () => {
  const s = readSettings({
    EDGE_UPLOAD_RESYNC_SECONDS: "2",
    EDGE_UPLOAD_CREATE_OBC: "yes",
    EDGE_UPLOAD_OBC_ENDPOINT: "s3.example.com",
    EDGE_UPLOAD_OBC_CA: "not a certificate",
    EDGE_UPLOAD_API_QPS: "0",
    EDGE_UPLOAD_WORKERS: "many",
  });
  assert.is(s.resyncSeconds, 60);
  assert.is(s.apiQps, 500);
  assert.is(s.workers, 32);
  assert.is(s.createObcDefault, "auto");
  assert.is(s.obcEndpoint, undefined);
  assert.equal(s.problems, [
    "module setting EDGE_UPLOAD_CREATE_OBC must be auto, true or false",
    "module setting EDGE_UPLOAD_RESYNC_SECONDS must be a whole number from 5 to 86400",
    "module setting EDGE_UPLOAD_API_QPS must be a whole number from 1 to 10000",
    "module setting EDGE_UPLOAD_WORKERS must be a whole number from 1 to 256",
    "module setting EDGE_UPLOAD_OBC_ENDPOINT is not a URL (https://host[:port])",
    "module setting EDGE_UPLOAD_OBC_CA is not a PEM certificate bundle",
  ]);
});

test("claim endpoints: the setting first; an invalid one is reported, not ignored", async () => {
  const set = new ClaimEndpoints(
    readSettings({ EDGE_UPLOAD_OBC_ENDPOINT: "https://s3.example.com", EDGE_UPLOAD_OBC_CA: CA }),
  );
  assert.equal(await set.get(), {
    source: "setting",
    url: "https://s3.example.com:443",
    what: "module setting EDGE_UPLOAD_OBC_ENDPOINT",
    caBundle: CA,
  });
  const bad = new ClaimEndpoints(
    readSettings({ EDGE_UPLOAD_OBC_ENDPOINT: "https://s3.example.com", EDGE_UPLOAD_OBC_CA: "x" }),
  );
  assert.equal(await bad.get(), {
    source: "invalid",
    message: "module setting EDGE_UPLOAD_OBC_CA is not a PEM certificate bundle",
  });
});

test("a Route's endpoint: its host on the router's port", () => {
  const route = (spec: Route["spec"]) => Object.assign(new Route(), { spec });
  assert.equal(
    routeEndpoint(
      route({ host: "s3-openshift-storage.apps.example", tls: { termination: "reencrypt" } }),
      CA,
    ),
    {
      source: "route",
      url: "https://s3-openshift-storage.apps.example:443",
      what: "Route openshift-storage/s3",
      caBundle: CA,
    },
  );
  assert.is(routeEndpoint(route({ host: "s3.apps.example" }))?.url, "http://s3.apps.example:80");
  assert.is(routeEndpoint(route({})), undefined);
  assert.is(routeEndpoint(undefined), undefined);
});

test.run();

/**
 * Bad input, one table: what a user or a hostile workload gets wrong, and the clear outcome each
 * must get. Admission cases go through the real API server and the running module; device cases
 * wait for the EdgeDevice's Ready condition; agent cases run `flotta-agent` against the real S3
 * server (and API server) and check its exit code and log line. In every agent case the agent
 * refuses or reports, and never crashes (exit code 1 or 2, never a stack trace).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runAgent, storageFor, writeConfig, type AgentRun } from "../support/agent-cli";
import { grantDeviceAccess, writeDeviceKubeconfig } from "../support/device-access";
import { tempDir, writeTree } from "../support/device-files";
import { applyYaml, conditionWhere, s3Objects, workloadYaml as workload } from "../support/devices";
import { testEnv } from "../support/env";
import { eventually } from "../support/eventually";
import { kubectl, kubectlOk } from "../support/kubectl";
import { uniqueName } from "../support/names";
import { listKeys, newBucket } from "../support/s3";

const ns = uniqueName("bad-input");
let root = "";
let bucket = "";

const one = "{ containers: [{ name: c, image: busybox }] }";
const mount = (path: string) =>
  `{ containers: [{ name: c, image: busybox, volumeMounts: [{ name: m, mountPath: ${path} }] }], volumes: [{ name: m, emptyDir: {} }] }`;
const device = (name: string, s3: string) => `
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata: { name: ${name} }
spec: { storage: { s3: ${s3} } }
`;
const external = (name: string) =>
  `{ configMapName: ${name}, secretName: ${name}, createOBC: false }`;

/** A refused workload: kubectl fails and says why, naming the field. */
interface AdmissionCase {
  kind: "admission";
  name: string;
  yaml: string;
  expect: RegExp;
}
/** A device whose storage is wrong: Ready=False with this reason, the message naming the field. */
interface DeviceCase {
  kind: "device";
  name: string;
  objects?: (name: string) => string;
  s3: string;
  reason: string;
  expect: RegExp;
}
/** The agent given something wrong: this exit code and a line saying what. */
interface AgentCase {
  kind: "agent";
  name: string;
  run: (dir: string) => Promise<AgentRun>;
  status: number;
  expect: RegExp;
}
type Case = AdmissionCase | DeviceCase | AgentCase;

const creds = () => ({
  accessKeyId: testEnv.s3.accessKeyId,
  secretAccessKey: testEnv.s3.secretAccessKey,
});
const s3Url = () => new URL(testEnv.s3.endpoint);
const withObjects =
  (edit: (yaml: string) => string, extra = "") =>
  (name: string) =>
    edit(s3Objects(ns, name, "bkt", s3Url(), creds(), extra));

/** `sync --once` on a device dir with workload `w` reading `source`, after `prepare`. */
function agentSync(
  source: string,
  prepare: (volume: string) => Promise<void>,
  config: (dir: string) => Promise<string> = dir => goodConfig(dir, source),
  extraArgs: string[] = [],
) {
  return async (dir: string) => {
    const volume = join(dir, "volumes", "w");
    await mkdir(volume, { recursive: true });
    await prepare(volume);
    const configFile = await config(dir);
    return runAgent([
      ...["sync", "--once", "--config", configFile, "--volumes-dir", join(dir, "volumes")],
      ...["--state-dir", join(dir, "state"), ...extraArgs],
    ]);
  };
}
async function goodConfig(dir: string, source = "out", storage = storageFor(bucket)) {
  const file = join(dir, "config.json");
  await writeConfig(file, {
    storage,
    workloads: [{ name: "w", paths: [{ source, target: "t" }] }],
  });
  return file;
}
const rawConfig = (text: string) => async (dir: string) => {
  await writeFile(join(dir, "config.json"), text);
  return join(dir, "config.json");
};
const nothing = async () => undefined;
const cli = (args: string[]) => async (dir: string) =>
  runAgent(args.map(a => a.replace("DIR", dir)));
const kubeAgent = (token: "revoked" | "garbage") => async (dir: string) => {
  const kubeconfig = join(dir, "kubeconfig");
  const name = `dev-${token}`;
  applyYaml(
    ns,
    `{"apiVersion":"management.project-flotta.io/v1alpha1","kind":"EdgeDevice","metadata":{"name":"${name}"},"spec":{}}`,
  );
  grantDeviceAccess(ns, name);
  writeDeviceKubeconfig(kubeconfig, ns, name);
  if (token === "revoked") kubectlOk(["delete", "serviceaccount", `${name}-agent`, "-n", ns]);
  else execFileSync("sed", ["-i", 's/"token":"[^"]*"/"token":"not-a-token"/', kubeconfig]);
  const args = [
    ...["sync", "--once", "--kubeconfig", kubeconfig, "--device", `${ns}/${name}`],
    ...["--volumes-dir", join(dir, "volumes"), "--state-dir", join(dir, "state")],
  ];
  // The API server may honour a deleted ServiceAccount's token for a few seconds (its cache).
  return eventually("the token to be refused", async () => {
    const run = await runAgent(args);
    return /refused/.test(run.stderr) ? run : undefined;
  });
};

const cases: Case[] = [
  // EdgeWorkload admission
  {
    kind: "admission",
    name: "abs-source",
    yaml: workload("abs-source", one, "[{ source: /etc, target: t }]"),
    expect: /spec\.data\.paths\[0\]\.source: must be relative/,
  },
  {
    kind: "admission",
    name: "dots-source",
    yaml: workload("dots-source", one, "[{ source: ../x, target: t }]"),
    expect: /spec\.data\.paths\[0\]\.source: must not contain '\.\.'/,
  },
  {
    kind: "admission",
    name: "empty-source",
    yaml: workload("empty-source", one, '[{ source: "", target: t }]'),
    expect: /spec\.data\.paths\[0\]\.source/,
  },
  {
    kind: "admission",
    name: "abs-target",
    yaml: workload("abs-target", one, "[{ source: s, target: /t }]"),
    expect: /spec\.data\.paths\[0\]\.target: must be relative/,
  },
  {
    kind: "admission",
    name: "dots-target",
    yaml: workload("dots-target", one, "[{ source: s, target: a/../../b }]"),
    expect: /spec\.data\.paths\[0\]\.target: must not contain '\.\.'/,
  },
  {
    kind: "admission",
    name: "dup-target",
    yaml: workload("dup-target", one, "[{ source: a, target: t }, { source: b, target: t }]"),
    expect: /spec\.data\.paths\[1\]\.target: "t" is already the target/,
  },
  {
    kind: "admission",
    name: "own-export",
    yaml: workload("own-export", mount("/export"), "[]"),
    expect: /volumeMounts\[0\]\.mountPath: "\/export" is reserved/,
  },
  {
    kind: "admission",
    name: "under-export",
    yaml: workload("under-export", mount("/export/x"), "[]"),
    expect: /volumeMounts\[0\]\.mountPath: "\/export\/x" is reserved/,
  },
  {
    kind: "admission",
    name: "no-containers",
    yaml: workload("no-containers", "{ containers: [] }", "[{ source: a, target: t }]"),
    expect: /spec\.pod\.spec\.containers: a workload with data paths needs at least one container/,
  },
  {
    kind: "admission",
    name: "bad-type",
    yaml: workload("bad-type", one, "[]").replace("type: pod", "type: vm"),
    expect: /spec\.type: Unsupported value: "vm"/,
  },
  // EdgeDevice storage: a condition naming the resource and key
  {
    kind: "device",
    name: "cm-missing",
    s3: "{ configMapName: nope, secretName: nope, createOBC: false }",
    reason: "ConfigMapNotFound",
    expect: /ConfigMap .*\/nope \(spec\.storage\.s3\.configMapName\) does not exist/,
  },
  {
    kind: "device",
    name: "secret-missing",
    objects: name => withObjects(y => y.split("---")[0])(name),
    s3: "",
    reason: "SecretNotFound",
    expect: /Secret .*\/secret-missing/,
  },
  {
    kind: "device",
    name: "no-secret-name",
    s3: "{ configMapName: x, createOBC: false }",
    reason: "SecretNotSet",
    expect: /spec\.storage\.s3\.secretName is not set/,
  },
  {
    kind: "device",
    name: "no-host",
    objects: withObjects(y => y.replace(/BUCKET_HOST: "[^"]*", /, "")),
    s3: "",
    reason: "KeyMissing",
    expect: /key BUCKET_HOST is missing/,
  },
  {
    kind: "device",
    name: "bad-port",
    objects: withObjects(y => y.replace(/BUCKET_PORT: "\d+"/, 'BUCKET_PORT: "99999"')),
    s3: "",
    reason: "InvalidPort",
    expect: /key BUCKET_PORT: "99999" is not a port number/,
  },
  {
    kind: "device",
    name: "host-path",
    objects: withObjects(y => y.replace(/BUCKET_HOST: "[^"]*"/, 'BUCKET_HOST: "h/x"')),
    s3: "",
    reason: "InvalidHost",
    expect: /key BUCKET_HOST: "h\/x" must be a host name/,
  },
  {
    kind: "device",
    name: "bad-bucket",
    objects: withObjects(y => y.replace("BUCKET_NAME: bkt", "BUCKET_NAME: -bad-")),
    s3: "",
    reason: "InvalidBucket",
    expect: /key BUCKET_NAME: "-bad-" is not an S3 bucket name/,
  },
  {
    kind: "device",
    name: "no-secret-key",
    objects: withObjects(y =>
      y.replace(/AWS_SECRET_ACCESS_KEY: \S+ /, 'AWS_SECRET_ACCESS_KEY: "" '),
    ),
    s3: "",
    reason: "KeyMissing",
    expect: /key AWS_SECRET_ACCESS_KEY is missing or empty/,
  },
  {
    kind: "device",
    name: "bad-ca",
    objects: withObjects(y => y, ', "tls.crt": "not a certificate"'),
    s3: "",
    reason: "InvalidCA",
    expect: /key tls\.crt is not a PEM/,
  },
  // The agent: config, command line, credentials
  {
    kind: "agent",
    name: "config not JSON",
    run: agentSync("out", nothing, rawConfig("{ not json")),
    status: 1,
    expect: /config not usable.*not valid JSON/,
  },
  {
    kind: "agent",
    name: "config without bucket",
    run: agentSync(
      "out",
      nothing,
      rawConfig(
        JSON.stringify({
          version: 1,
          device: { namespace: "a", name: "b" },
          storage: { ...storageFor("x"), bucket: undefined },
          workloads: [],
        }),
      ),
    ),
    status: 1,
    expect: /storage\.bucket/,
  },
  {
    kind: "agent",
    name: "config of an unknown version",
    run: agentSync("out", nothing, rawConfig('{"version": 7}')),
    status: 1,
    expect: /version/,
  },
  {
    kind: "agent",
    name: "endpoint with a path",
    run: agentSync("out", nothing, dir =>
      goodConfig(dir, "out", storageFor(bucket, { endpoint: "http://127.0.0.1:7070/x/y" })),
    ),
    status: 1,
    expect: /storage\.endpoint/,
  },
  {
    kind: "agent",
    name: "config file missing",
    run: cli(["sync", "--once", "--config", "DIR/none.json", "--state-dir", "DIR/state"]),
    status: 1,
    expect: /no valid device config yet/,
  },
  {
    kind: "agent",
    name: "wrong CA for a TLS endpoint",
    run: agentSync(
      "out",
      v => writeTree(join(v, "out"), { a: "a" }),
      dir =>
        goodConfig(
          dir,
          "out",
          storageFor(bucket, { endpoint: testEnv.s3.tlsEndpoint, caBundle: WRONG_CA }),
        ),
    ),
    status: 1,
    expect: /certificate/i,
  },
  {
    kind: "agent",
    name: "unknown option",
    run: cli(["sync", "--once", "--frobnicate"]),
    status: 2,
    expect: /Unknown option '--frobnicate'/,
  },
  {
    kind: "agent",
    name: "part size out of range",
    run: cli(["run", "--config", "x", "--part-size", "4"]),
    status: 2,
    expect: /--part-size must be a whole number from 5 to 5120/,
  },
  {
    kind: "agent",
    name: "malformed --device",
    run: cli(["run", "--kubeconfig", "k", "--device", "no-slash"]),
    status: 2,
    expect: /--device must be NAMESPACE\/NAME/,
  },
  {
    kind: "agent",
    name: "kubeconfig not YAML",
    run: async dir => {
      await writeFile(join(dir, "k"), ": : :");
      return runAgent(["sync", "--once", "--kubeconfig", join(dir, "k"), "--device", "a/b"]);
    },
    status: 2,
    expect: /cannot use kubeconfig/,
  },
  {
    kind: "agent",
    name: "revoked token",
    run: kubeAgent("revoked"),
    status: 1,
    expect: /device token was refused \(expired or revoked\)/,
  },
  {
    kind: "agent",
    name: "a token that is no token",
    run: kubeAgent("garbage"),
    status: 1,
    expect: /device token was refused \(expired or revoked\)/,
  },
  // The agent: what a workload puts in its volume
  {
    kind: "agent",
    name: "source is a file",
    run: agentSync("out", v => writeFile(join(v, "out"), "a file")),
    status: 1,
    expect: /the source folder is not a directory/,
  },
  {
    kind: "agent",
    name: "source is a FIFO",
    run: agentSync("out", async v => void execFileSync("mkfifo", [join(v, "out")])),
    status: 1,
    expect: /the source folder is not a directory/,
  },
  {
    kind: "agent",
    name: "source is a symlink loop",
    run: agentSync("out", v => symlink("out", join(v, "out"))),
    status: 1,
    expect: /the source folder is a symlink: not followed/,
  },
  {
    kind: "agent",
    name: "a file that is a symlink loop",
    run: agentSync("out", async v => {
      await writeTree(join(v, "out"), { ok: "ok" });
      await symlink("loop", join(v, "out", "loop"));
    }),
    status: 0,
    expect: /"path":"loop","error":"a symlink loop: not followed"/,
  },
  {
    kind: "agent",
    name: "a key over 1,024 bytes",
    run: agentSync("out", v =>
      writeTree(join(v, "out"), {
        [`${"d".repeat(250)}/${"e".repeat(250)}/${"f".repeat(250)}/${"g".repeat(250)}/${"h".repeat(250)}.txt`]:
          "deep",
        "ok.txt": "ok",
      }),
    ),
    status: 1,
    expect: /"key":"t\/d{250}\/e{250}.*longer than 1,024 bytes/,
  },
  {
    kind: "agent",
    name: "200 levels of nesting (uploaded)",
    run: agentSync("out", v =>
      writeTree(join(v, "out"), { [`${"n/".repeat(200)}leaf.txt`]: "leaf" }),
    ),
    status: 0,
    expect: /synced: 1 files seen, 1 sent/,
  },
  {
    kind: "agent",
    name: "a name that is not UTF-8 (uploaded as %XX)",
    run: agentSync("out", async v => {
      await mkdir(join(v, "out"));
      await writeFile(
        Buffer.concat([Buffer.from(join(v, "out", "caf")), Buffer.from([0xe9, 0x2e, 0x74])]),
        "x",
      );
    }),
    status: 0,
    expect: /synced: 1 files seen, 1 sent/,
  },
];

// A CA that did not sign the test S3 server's certificate (the cluster's own CA will do).
let WRONG_CA = "";

test.before(async () => {
  root = await tempDir("bad-input");
  bucket = await newBucket("bad-input");
  kubectlOk(["create", "namespace", ns]);
  const admin = JSON.parse(kubectlOk(["config", "view", "--raw", "-o", "json"])) as {
    clusters: { cluster: { "certificate-authority-data": string } }[];
  };
  WRONG_CA = Buffer.from(
    admin.clusters[0].cluster["certificate-authority-data"],
    "base64",
  ).toString();
});
test.after(async () => {
  kubectl(["delete", "namespace", ns, "--wait=false"]);
  await rm(root, { recursive: true, force: true });
});

test(`the table has at least 30 cases (${cases.length})`, () => {
  assert.ok(cases.length >= 30);
});

for (const c of cases.filter((c): c is AdmissionCase => c.kind === "admission")) {
  test(`admission refuses: ${c.name}`, () => {
    const result = kubectl(["apply", "-n", ns, "-f", "-"], { input: c.yaml });
    assert.is.not(result.status, 0, "the workload was accepted");
    assert.match(result.stderr, c.expect);
  });
}

test("device storage mistakes: Ready=False, the reason, and the field named", async () => {
  const devices = cases.filter((c): c is DeviceCase => c.kind === "device");
  for (const c of devices) {
    if (c.objects) applyYaml(ns, c.objects(c.name));
    applyYaml(ns, device(c.name, c.s3 || external(c.name)));
  }
  for (const c of devices) {
    const ready = await conditionWhere(ns, c.name, c.reason);
    assert.is(ready.status, "False", c.name);
    assert.match(ready.message, c.expect, c.name);
  }
});

for (const c of cases.filter((c): c is AgentCase => c.kind === "agent")) {
  test(`agent: ${c.name}`, async () => {
    const dir = join(root, c.name.replace(/\W+/g, "-"));
    await mkdir(dir, { recursive: true });
    const run = await c.run(dir);
    const said = run.stdout + run.stderr;
    assert.is(run.status, c.status, said);
    assert.match(said, c.expect);
    assert.not.match(said, /unexpected error| {4}at /, "a crash, not a clear refusal");
  });
}

test("the agent's good files still reach the bucket next to bad ones", async () => {
  const keys = [...(await listKeys(bucket)).keys()];
  assert.ok(keys.includes("t/ok.txt"), keys.join());
  assert.ok(keys.includes("t/caf%E9.t"), keys.join());
  assert.ok(keys.some(k => k.endsWith("/leaf.txt")));
});

test.run();

/**
 * The agent as shipped: `npm run agent:pack` makes a tarball that, unpacked into an empty
 * directory far from this repository's node_modules, installs and syncs with Node.js alone.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { lstat, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runAgent, storageFor, writeConfig } from "../support/agent-cli";
import { tempDir, writeTree } from "../support/device-files";
import { getObject, newBucket } from "../support/s3";

const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
let root = "";

test.before(async () => {
  root = await tempDir("agent-tarball");
});
test.after(async () => {
  await rm(root, { recursive: true, force: true });
});

function sh(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    ...options,
    env: { ...process.env, ...options.env },
  });
  assert.is(result.status, 0, `${command} ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

test("the tarball holds one bundled script, the unit, the installer and a README", async () => {
  sh("npm", ["run", "-s", "agent:pack"]);
  const listing = sh("tar", ["-tzf", `dist/flotta-agent-${version}.tgz`])
    .trim()
    .split("\n")
    .sort();
  const dir = `flotta-agent-${version}/`;
  assert.equal(listing, [
    dir,
    `${dir}README.md`,
    `${dir}flotta-agent.js`,
    `${dir}flotta-agent.js.LEGAL.txt`,
    `${dir}flotta-agent.service`,
    `${dir}install.sh`,
  ]);
  assert.not.ok(listing.some(path => path.includes("node_modules")));
});

test("unpacked into an empty directory, it installs and syncs with Node.js alone", async () => {
  const unpacked = join(root, "device");
  sh("mkdir", ["-p", unpacked]);
  sh("tar", ["-xzf", `${process.cwd()}/dist/flotta-agent-${version}.tgz`, "-C", unpacked]);
  const bundle = join(unpacked, `flotta-agent-${version}`);
  const bucket = await newBucket("tarball");
  const config = join(root, "config.json");
  await writeConfig(config, {
    storage: storageFor(bucket),
    workloads: [{ name: "w", paths: [{ source: "out", target: "t" }] }],
  });

  const installed = join(root, "opt");
  sh("sh", [join(bundle, "install.sh"), "--config", config, "--no-start"], {
    env: { PREFIX: installed, ETC_DIR: join(root, "etc"), SYSTEMD_UNIT_DIR: join(root, "units") },
  });
  const agentGid = Number(sh("id", ["-g", "flotta-agent"]).trim());
  const configStat = await stat(join(root, "etc", "config.json"));
  assert.is(configStat.mode & 0o777, 0o640);
  assert.equal([configStat.uid, configStat.gid], [0, agentGid], "root's, readable by the agent");
  assert.match(
    await readFile(join(root, "etc", "agent.env"), "utf8"),
    /FLOTTA_AGENT_ARGS="--config .*config.json --state-dir/,
  );
  assert.match(
    await readFile(join(root, "units", "flotta-agent.service"), "utf8"),
    /ExecStart=.*flotta-agent.js run/,
  );

  await writeTree(join(root, "volumes", "w", "out"), { "hello.txt": "from the tarball" });
  const state = join(root, "state");
  // cwd is the empty directory: nothing can be resolved from the repository's node_modules.
  const run = await runAgent(
    [
      "sync",
      "--once",
      "--config",
      config,
      "--volumes-dir",
      join(root, "volumes"),
      "--state-dir",
      state,
    ],
    {
      bin: join(installed, "flotta-agent.js"),
      cwd: unpacked,
    },
  );
  assert.is(run.status, 0, run.stderr);
  assert.is((await getObject(bucket, "t/hello.txt")).toString(), "from the tarball");
  for (const name of await readdir(state)) {
    assert.is((await stat(join(state, name))).mode & 0o777, 0o600, `${name} is readable by others`);
  }
  assert.is((await stat(state)).mode & 0o777, 0o700);
});

const unpackedDir = () => join(root, "device", `flotta-agent-${version}`);

test("the x86-64 tarball: install.sh installs its single executable, which syncs with no Node.js", async () => {
  const listing = sh("tar", ["-tzf", `dist/flotta-agent-${version}-linux-x64.tgz`]);
  assert.ok(listing.includes(`flotta-agent-${version}/flotta-agent\n`), listing);
  assert.not.ok(listing.includes("flotta-agent.js\n"), "the script is not in it");
  const unpacked = join(root, "exe");
  sh("mkdir", ["-p", unpacked]);
  sh("tar", [
    "-xzf",
    `${process.cwd()}/dist/flotta-agent-${version}-linux-x64.tgz`,
    "-C",
    unpacked,
  ]);
  const bucket = await newBucket("exe-tarball");
  const config = join(root, "exe-config.json");
  await writeConfig(config, {
    storage: storageFor(bucket),
    workloads: [{ name: "w", paths: [{ source: "out", target: "t" }] }],
  });
  const prefix = join(root, "exe-opt");
  const units = join(root, "exe-units");
  // An earlier install of the script, replaced by the executable.
  sh("mkdir", ["-p", prefix]);
  await writeFile(join(prefix, "flotta-agent.js"), "// an older install\n");
  sh(
    "sh",
    [join(unpacked, `flotta-agent-${version}`, "install.sh"), "--config", config, "--no-start"],
    {
      env: { PREFIX: prefix, ETC_DIR: join(root, "exe-etc"), SYSTEMD_UNIT_DIR: units },
    },
  );
  assert.equal((await readdir(prefix)).sort(), ["README.md", "flotta-agent"]);
  assert.match(
    await readFile(join(units, "flotta-agent.service"), "utf8"),
    new RegExp(`\nExecStart=${prefix}/flotta-agent run \\$FLOTTA_AGENT_ARGS\n`),
  );
  await writeTree(join(root, "exe-volumes", "w", "out"), { "hello.txt": "from the executable" });
  // Run with an empty PATH: no node to find.
  const run = spawnSync(
    join(prefix, "flotta-agent"),
    [
      "sync",
      "--once",
      "--config",
      config,
      "--volumes-dir",
      join(root, "exe-volumes"),
      "--state-dir",
      join(root, "exe-state"),
    ],
    { encoding: "utf8", env: { PATH: "" } },
  );
  assert.is(run.status, 0, run.stderr);
  assert.is((await getObject(bucket, "t/hello.txt")).toString(), "from the executable");
  // Nothing to fetch at start: it runs in a network namespace with no network at all.
  const offline = spawnSync("unshare", ["--net", join(prefix, "flotta-agent"), "--version"], {
    encoding: "utf8",
  });
  assert.is(offline.status, 0, offline.stderr);
  assert.match(offline.stdout, /Node\.js 22\.\d+\.\d+ \(built in: single executable\)/);
});

test("the arm64 tarball on this x86-64 machine: install.sh says it does not fit, and installs nothing", async () => {
  const unpacked = join(root, "arm");
  sh("mkdir", ["-p", unpacked]);
  sh("tar", [
    "-xzf",
    `${process.cwd()}/dist/flotta-agent-${version}-linux-arm64.tgz`,
    "-C",
    unpacked,
  ]);
  const prefix = join(root, "arm-opt");
  const r = spawnSync(
    "sh",
    [
      join(unpacked, `flotta-agent-${version}`, "install.sh"),
      "--config",
      join(root, "exe-config.json"),
      "--no-start",
    ],
    {
      encoding: "utf8",
      env: {
        ...process.env,
        PREFIX: prefix,
        ETC_DIR: join(root, "arm-etc"),
        SYSTEMD_UNIT_DIR: join(root, "arm-units"),
      },
    },
  );
  assert.is(r.status, 1);
  assert.match(
    r.stderr,
    /flotta-agent does not run on this machine \(x86_64\); take the tarball for its architecture/,
  );
  assert.not.ok(existsSync(prefix), "installed something");
});

test("SHA256SUMS checks every artifact, and the SBOM names what is bundled and the Node.js", async () => {
  const sums = spawnSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: "dist", encoding: "utf8" });
  assert.is(sums.status, 0, sums.stdout + sums.stderr);
  assert.is(sums.stdout.trim().split("\n").length, 10, sums.stdout);
  const sbom = JSON.parse(await readFile(`dist/flotta-agent-${version}.cdx.json`, "utf8")) as {
    bomFormat: string;
    specVersion: string;
    components: { name: string; version: string; purl: string }[];
  };
  assert.is(sbom.bomFormat, "CycloneDX");
  assert.is(sbom.specVersion, "1.5");
  const sdk = JSON.parse(
    await readFile("node_modules/@aws-sdk/client-s3/package.json", "utf8"),
  ) as {
    version: string;
  };
  assert.ok(
    sbom.components.some(c => c.purl === `pkg:npm/%40aws-sdk/client-s3@${sdk.version}`),
    "the S3 client, at the version bundled",
  );
  assert.ok(sbom.components.some(c => c.name === "node" && /^22\./.test(c.version)));
  assert.not.ok(sbom.components.some(c => /pepr|kubernetes-fluent-client/.test(c.name)));
});

test("the unit from the tarball passes systemd-analyze verify, with an exposure of at most 3.0", async () => {
  const unit = join(unpackedDir(), "flotta-agent.service");
  const text = await readFile(unit, "utf8");
  for (const line of [
    "User=flotta-agent",
    "AmbientCapabilities=CAP_DAC_READ_SEARCH",
    "CapabilityBoundingSet=CAP_DAC_READ_SEARCH",
    "ProtectSystem=strict",
    "NoNewPrivileges=yes",
    "StateDirectory=flotta-agent",
  ])
    assert.ok(text.includes(`\n${line}\n`), `the unit lacks ${line}`);
  const verify = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
  assert.is(verify.status, 0, verify.stderr);
  assert.is(verify.stderr.trim(), "", "systemd-analyze verify has warnings");
  const security = spawnSync("systemd-analyze", ["security", "--offline=true", unit], {
    encoding: "utf8",
  });
  const exposure = /Overall exposure level for flotta-agent\.service: ([\d.]+)/.exec(
    security.stdout,
  );
  assert.ok(exposure, security.stdout + security.stderr);
  assert.ok(Number(exposure[1]) <= 3.0, `exposure ${exposure[1]} is above 3.0`);
});

test("install.sh creates the agent's user and updates a changed agent.env, saying so", async () => {
  const env = {
    PREFIX: join(root, "opt"),
    ETC_DIR: join(root, "etc"),
    SYSTEMD_UNIT_DIR: join(root, "units"),
  };
  const other = join(root, "other-config.json");
  await writeConfig(other, { storage: storageFor("any"), workloads: [] });
  const installer = join(unpackedDir(), "install.sh");
  sh("id", ["flotta-agent"]); // created by the install in the test above
  const etc = await stat(join(root, "etc"));
  assert.equal([etc.uid, etc.mode & 0o777], [0, 0o750], "the config dir is root's");
  const out = sh("sh", [installer, "--config", other, "--no-start", "--", "--max-rate", "10M"], {
    env,
  });
  assert.match(out, /updated .*agent\.env/);
  assert.match(
    await readFile(join(root, "etc", "agent.env"), "utf8"),
    /--state-dir \/var\/lib\/flotta-agent --max-rate 10M"/,
  );
  assert.match(await readFile(join(root, "etc", "agent.env.previous"), "utf8"), /--config/);
  // The same arguments again: nothing to update.
  const again = sh("sh", [installer, "--config", other, "--no-start", "--", "--max-rate", "10M"], {
    env,
  });
  assert.not.match(again, /updated/);
});

test("an older install's agent-owned config dir: install.sh takes it back, writes through no link", async () => {
  const env = {
    PREFIX: join(root, "opt"),
    ETC_DIR: join(root, "etc"),
    SYSTEMD_UNIT_DIR: join(root, "units"),
  };
  const etc = join(root, "etc");
  const victim = join(root, "victim");
  await writeFile(victim, "root's file, untouched\n");
  // What a compromised agent could do while it owned the folder: a link where root writes next.
  sh("chown", ["-R", "flotta-agent:", etc]);
  sh("chmod", ["0711", root]); // the agent's user may pass through the test's temp folder
  await rm(join(etc, "agent.env.previous"), { force: true });
  sh("su", ["-s", "/bin/sh", "flotta-agent", "-c", `ln -s ${victim} ${etc}/agent.env.previous`]);
  const changed = join(root, "changed-config.json");
  await writeConfig(changed, { storage: storageFor("another"), workloads: [] });
  const out = sh("sh", [join(unpackedDir(), "install.sh"), "--config", changed, "--no-start"], {
    env,
  });
  assert.match(out, /updated .*agent\.env/);
  assert.is(await readFile(victim, "utf8"), "root's file, untouched\n");
  assert.ok((await lstat(join(etc, "agent.env.previous"))).isFile(), "a regular file now");
  const dir = await stat(etc);
  assert.equal([dir.uid, dir.mode & 0o777], [0, 0o750]);
  for (const name of await readdir(etc)) assert.is((await lstat(join(etc, name))).uid, 0, name);
});

test("the metrics textfile under the unit's UMask=0077 is readable by node_exporter, and the unit may write its folder", async () => {
  const unit = await readFile(join(unpackedDir(), "flotta-agent.service"), "utf8");
  assert.match(unit, /\nUMask=0077\n/);
  assert.match(unit, /\nReadWritePaths=-\/var\/lib\/node_exporter\/textfile_collector\n/);
  assert.not.match(unit, /ReadWritePaths=\/etc\/flotta-agent/, "the config dir is read-only to it");
  const bucket = await newBucket("textfile");
  const config = join(root, "textfile-config.json");
  await writeConfig(config, { storage: storageFor(bucket), workloads: [] });
  const textfile = join(root, "flotta-agent.prom");
  const old = process.umask(0o077); // what the unit gives the agent
  let run;
  try {
    run = runAgent(
      [
        "sync",
        "--once",
        "--config",
        config,
        "--state-dir",
        join(root, "tf-state"),
        "--metrics-textfile",
        textfile,
      ],
      { bin: join(root, "opt", "flotta-agent.js") },
    );
  } finally {
    process.umask(old);
  }
  const done = await run;
  assert.is(done.status, 0, done.stderr);
  assert.is((await stat(textfile)).mode & 0o777, 0o644);
  assert.match(await readFile(textfile, "utf8"), /flotta_agent_passes_total/);
});

test.run();

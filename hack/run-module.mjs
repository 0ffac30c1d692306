// Starts one process of the built module (admission or watcher) as its Deployment's container
// would, from what hack/deploy-local.ts prepared:  node hack/run-module.mjs DIR ROLE
// Only the port differs: both processes share this host, so the watcher's server (Pepr listens
// on 3000 in every pod) is moved to its own port, as a pod would have its own address.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { join } from "node:path";

const [dir, role] = process.argv.slice(2);
const processes = JSON.parse(readFileSync(join(dir, "processes.json"), "utf8"));
const spec = processes[role];
if (!spec) throw new Error("usage: run-module.mjs DIR admission|watcher");
Object.assign(process.env, spec.env);

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, ...rest) {
  return listen.call(this, port === 3000 ? spec.port : port, ...rest);
};
createRequire(processes.module)(processes.module);

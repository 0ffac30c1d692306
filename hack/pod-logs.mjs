// Follows the logs the node's kubelet writes for the module's pods into the files the tests and
// people read, as the processes wrote them (the CRI line prefix taken off): the watcher
// container's lines to module.log, the admission ("server") containers' to module-admission.log.
// Pods come and go (restarts, rollouts); every pod whose log directory starts with PREFIX is
// followed while it exists. Run by hack/module.sh:  node hack/pod-logs.mjs POD_LOGS PREFIX LOG_DIR
import { appendFileSync, closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";

const [podLogs, prefix, logDir] = process.argv.slice(2);
const targets = {
  watcher: join(logDir, "module.log"),
  server: join(logDir, "module-admission.log"),
};
const followed = new Map(); // log file -> { offset, partial }

function* logFiles() {
  for (const pod of readdirSync(podLogs).filter(name => name.startsWith(prefix)))
    for (const container of Object.keys(targets)) {
      const dir = join(podLogs, pod, container);
      let names = [];
      try {
        names = readdirSync(dir).filter(name => /^\d+\.log$/.test(name));
      } catch {
        continue;
      }
      for (const name of names.sort((a, b) => parseInt(a) - parseInt(b)))
        yield { file: join(dir, name), target: targets[container] };
    }
}

/** New complete lines of FILE, from CRI lines "TIME STREAM P|F TEXT" (P: a part of a longer line). */
function readNew(file, state) {
  let fd;
  try {
    fd = openSync(file, "r");
  } catch {
    return "";
  }
  try {
    const size = statSync(file).size;
    if (size < state.offset) state.offset = 0; // rotated
    if (size === state.offset) return "";
    const buffer = Buffer.alloc(size - state.offset);
    readSync(fd, buffer, 0, buffer.length, state.offset);
    const text = buffer.toString("utf8");
    const end = text.lastIndexOf("\n") + 1;
    state.offset += Buffer.byteLength(text.slice(0, end));
    let out = "";
    for (const line of text.slice(0, end).split("\n").slice(0, -1)) {
      const m = /^\S+ \S+ ([PF]) (.*)$/.exec(line);
      if (!m) continue;
      state.partial += m[2];
      if (m[1] === "F") {
        out += state.partial + "\n";
        state.partial = "";
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function poll() {
  let files = [];
  try {
    files = [...logFiles()];
  } catch {
    return; // the node's log directory is not there yet
  }
  for (const { file, target } of files) {
    if (!followed.has(file)) followed.set(file, { offset: 0, partial: "" });
    const text = readNew(file, followed.get(file));
    if (text) appendFileSync(target, text);
  }
}

const timer = setInterval(poll, 200);
for (const signal of ["SIGTERM", "SIGINT"])
  process.on(signal, () => {
    clearInterval(timer);
    poll();
    process.exit(0);
  });

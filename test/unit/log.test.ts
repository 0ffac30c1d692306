import { test } from "uvu";
import * as assert from "uvu/assert";
import { createLogger, registerSecret } from "../../agent/log";

test("JSON lines, level filtered, registered secrets never printed", () => {
  const lines: string[] = [];
  const log = createLogger("info", line => lines.push(line));
  registerSecret("wJalrXUtnFEMI-secret", "tiny");
  log.debug("hidden");
  log.warn("upload failed", { error: "key wJalrXUtnFEMI-secret was refused", short: "tiny" });
  assert.is(lines.length, 1);
  const parsed = JSON.parse(lines[0]);
  assert.is(parsed.level, "warn");
  assert.is(parsed.msg, "upload failed");
  assert.is(parsed.error, "key [redacted] was refused");
  assert.is(parsed.short, "tiny", "values too short to be credentials are not blanked");
  assert.match(parsed.time, /^\d{4}-\d\d-\d\dT/);
});

test.run();

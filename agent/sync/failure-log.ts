/**
 * The last upload error of each file that failed, for `flotta-agent explain`:
 * `<state-dir>/failures.json`, replaced whole (atomically) after a pass with new failures, at
 * most 1,000 files (the newest). explain answers from the index first (a file sent since), and
 * uses a record only when it is newer than the file's last change, so an old record never hides
 * what happened since.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file";

export interface Failure {
  error: string;
  /** ISO time of the pass that failed it. */
  at: string;
}

const MAX_FILES = 1000;

export class FailureLog {
  private readonly file: string;
  private failures = new Map<string, Failure>();
  private loaded = false;

  constructor(stateDir: string) {
    this.file = join(stateDir, "failures.json");
  }

  async read(): Promise<Map<string, Failure>> {
    if (this.loaded) return this.failures;
    try {
      this.failures = new Map(Object.entries(JSON.parse(await readFile(this.file, "utf8"))));
    } catch {
      this.failures = new Map();
    }
    this.loaded = true;
    return this.failures;
  }

  /** Records a pass's failures. Written only when something changed. */
  async update(failed: { key: string; error: string }[]): Promise<void> {
    if (!failed.length) return;
    const failures = await this.read();
    let changed = false;
    const at = new Date().toISOString();
    for (const { key, error } of failed) {
      if (failures.get(key)?.error === error) continue;
      failures.delete(key);
      failures.set(key, { error, at });
      changed = true;
    }
    for (const key of failures.keys()) {
      if (failures.size <= MAX_FILES) break;
      failures.delete(key);
    }
    if (changed) await writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(failures)));
  }
}

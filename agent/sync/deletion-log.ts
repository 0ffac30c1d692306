/**
 * What retention deleted, for `flotta-agent explain`: one JSON line per deleted file in
 * `<state-dir>/deleted.log` (mode 0600), the older half kept as `deleted.log.1` once the log
 * passes 1 MiB (so about 10,000 recent deletions stay answerable, and the flash sees one short
 * append per deleted file).
 */
import { appendFile, readFile, rename, stat } from "node:fs/promises";
import { join } from "node:path";

export interface Deletion {
  /** ISO time of the deletion. */
  at: string;
  /** The object key the file was confirmed as. */
  key: string;
  workload: string;
  /** The file's path relative to its data path's source. */
  path: string;
  size: number;
}

const MAX_BYTES = 1 << 20;

export class DeletionLog {
  private readonly file: string;

  constructor(stateDir: string) {
    this.file = join(stateDir, "deleted.log");
  }

  async add(deletions: Deletion[]): Promise<void> {
    if (!deletions.length) return;
    const size = await stat(this.file).then(
      s => s.size,
      () => 0,
    );
    if (size > MAX_BYTES) await rename(this.file, `${this.file}.1`);
    const text = deletions.map(d => `${JSON.stringify(d)}\n`).join("");
    await appendFile(this.file, text, { mode: 0o600 });
  }

  /** The last deletion of `key`, if the log still holds one. */
  async find(key: string): Promise<Deletion | undefined> {
    let found: Deletion | undefined;
    for (const name of [`${this.file}.1`, this.file]) {
      const text = await readFile(name, "utf8").catch(() => "");
      for (const line of text.split("\n")) {
        if (!line.includes(JSON.stringify(key).slice(1, -1))) continue;
        try {
          const d = JSON.parse(line) as Deletion;
          if (d.key === key) found = d;
        } catch {
          // a torn last line: skip it
        }
      }
    }
    return found;
  }
}

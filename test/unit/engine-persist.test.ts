import { test } from "uvu";
import * as assert from "uvu/assert";
import type { S3Client } from "@aws-sdk/client-s3";
import { DestinationSync } from "../../agent/sync/engine";
import { emptyIndex, type Destination, type IndexStore } from "../../agent/sync/index-store";
import { RateLimiter } from "../../agent/sync/rate-limit";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test("a failed index save does not stop later saves, and the change is saved then", async () => {
  const saved: number[] = [];
  let failNext = true;
  // Only the local index store is replaced: this test is about save ordering, not S3.
  const store = {
    async load(d: Destination) {
      return { state: "missing" as const, index: emptyIndex(d) };
    },
    async save(index: { files: { size: number } }) {
      if (failNext) {
        failNext = false;
        throw new Error("ENOSPC: no space left on device");
      }
      saved.push(index.files.size);
    },
  } as unknown as IndexStore;
  const sync = new DestinationSync(
    { client: {} as S3Client, putObject: async () => undefined, uploadPart: async () => "" },
    { endpoint: "http://s3", bucket: "b" },
    store,
    {
      volumesDir: "/nonexistent",
      concurrency: 1,
      multipartConcurrency: 1,
      partSize: 8 << 20,
      queueSize: 1,
      limiter: new RateLimiter(),
    },
    quiet,
  );
  await sync.open();
  sync.state.files.set("k", {
    workload: "w",
    size: 1,
    mtimeNs: "1",
    ctimeNs: "1",
    ino: "1",
    md5: "0123456789abcdef0123456789abcdef",
    sentAt: "2026-01-01T00:00:00Z",
  });
  (sync as unknown as { dirty: boolean }).dirty = true;
  try {
    await sync.persist();
    assert.unreachable("the failing save did not reject");
  } catch (err) {
    assert.match(String(err), /ENOSPC/);
  }
  await sync.persist();
  assert.equal(saved, [1], "the change was saved by the next persist");
});

test.run();

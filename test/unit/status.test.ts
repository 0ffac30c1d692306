import { test } from "uvu";
import * as assert from "uvu/assert";
import { buildDataUploadStatus } from "../../agent/status";
import { emptyReport } from "../../agent/sync/engine";
import { emptyIndex, type IndexEntry } from "../../agent/sync/index-store";

const entry = (workload: string, size: number): IndexEntry => ({
  workload,
  size,
  mtimeNs: "1",
  ctimeNs: "1",
  ino: "1",
  md5: "0123456789abcdef0123456789abcdef",
  sentAt: "2026-01-01T00:00:00Z",
});

test("totals per workload and overall, latest times, no error", () => {
  const index = emptyIndex({ endpoint: "http://s3", bucket: "b" });
  index.files.set("a/1", entry("a", 10));
  index.files.set("a/2", entry("a", 5));
  index.files.set("b/1", entry("b", 1));
  index.workloads = {
    a: { lastSyncTime: "2026-01-01T00:00:02Z", lastUploadTime: "2026-01-01T00:00:01Z" },
    b: { lastSyncTime: "2026-01-01T00:00:03Z", lastError: "AccessDenied" },
  };
  assert.equal(buildDataUploadStatus(index, undefined), {
    destination: "http://s3/b",
    filesSent: 3,
    bytesSent: 16,
    workloads: [
      { name: "a", filesSent: 2, bytesSent: 15, lastUploadTime: "2026-01-01T00:00:01Z" },
      { name: "b", filesSent: 1, bytesSent: 1, lastError: "AccessDenied" },
    ],
    lastError: null as unknown as string,
    lastSyncTime: "2026-01-01T00:00:03Z",
    lastUploadTime: "2026-01-01T00:00:01Z",
  });
});

test("a problem is the last error", () => {
  const status = buildDataUploadStatus(
    emptyIndex({ endpoint: "e", bucket: "b" }),
    undefined,
    "cannot open",
  );
  assert.is(status.lastError, "cannot open");
});

test("a state dir that cannot be written is reported until it can", () => {
  const index = emptyIndex({ endpoint: "e", bucket: "b" });
  const report = {
    ...emptyReport(),
    stateProblem: "cannot save the index in the state dir: ENOSPC: no space left on device",
  };

  assert.match(buildDataUploadStatus(index, report).lastError ?? "", /state dir: ENOSPC/);
  assert.is(buildDataUploadStatus(index, { ...report, stateProblem: undefined }).lastError, null);
});

test("files waiting: quiet, failed, and changed while sent", () => {
  const index = emptyIndex({ endpoint: "http://s3", bucket: "b" });
  const report = {
    ...emptyReport(),
    quiet: 2,
    changedDuringUpload: 1,
    failures: [{ key: "k", error: "e" }],
  };
  assert.is(buildDataUploadStatus(index, report).filesWaiting, 4);
  assert.is(buildDataUploadStatus(index, emptyReport()).filesWaiting, 0);
  assert.is(buildDataUploadStatus(index, undefined).filesWaiting, undefined);
});
test.run();

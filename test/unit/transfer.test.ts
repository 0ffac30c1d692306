import { test } from "uvu";
import * as assert from "uvu/assert";
import { MAX_PARTS, partSizeFor } from "../../agent/sync/transfer";

const MiB = 1024 * 1024;

test("the part size stays as set while 10,000 parts hold the file", () => {
  assert.is(partSizeFor(0, 8 * MiB), 8 * MiB);
  assert.is(partSizeFor(8 * MiB * MAX_PARTS, 8 * MiB), 8 * MiB);
});

test("a file larger than 10,000 parts gets whole-MiB parts just large enough", () => {
  const size = 8 * MiB * MAX_PARTS + 1;
  const part = partSizeFor(size, 8 * MiB);
  assert.is(part, 9 * MiB);
  assert.ok(Math.ceil(size / part) <= MAX_PARTS);
  const huge = 5 * 1024 ** 4; // S3's 5 TiB maximum object
  assert.ok(Math.ceil(huge / partSizeFor(huge, 5 * MiB)) <= MAX_PARTS);
});

test.run();

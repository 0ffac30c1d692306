import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseWatchLine } from "../../capabilities/metadata-watch";

const line = (type: string, metadata: object) =>
  JSON.stringify({ type, object: { kind: "PartialObjectMetadata", metadata } });

test("an event gives namespace, name, resource version, labels and owners, nothing else", () => {
  assert.equal(
    parseWatchLine(
      line("MODIFIED", { namespace: "edge", name: "s3creds", resourceVersion: "42", uid: "u" }),
    ),
    {
      type: "MODIFIED",
      namespace: "edge",
      name: "s3creds",
      resourceVersion: "42",
      labels: {},
      owners: [],
    },
  );
  assert.is(
    parseWatchLine(line("BOOKMARK", { resourceVersion: "50" }))?.["type" as never],
    "BOOKMARK",
  );
});

test("labels and owners come along (access objects name their device)", () => {
  const e = parseWatchLine(
    line("DELETED", {
      namespace: "edge",
      name: "cam-data-upload-agent",
      resourceVersion: "7",
      labels: { "edge-data-upload.project-flotta.io/device": "cam" },
      ownerReferences: [{ uid: "u-1", kind: "EdgeDevice" }],
    }),
  );
  assert.equal(e && "labels" in e ? [e.labels, e.owners] : undefined, [
    { "edge-data-upload.project-flotta.io/device": "cam" },
    ["u-1"],
  ]);
});

test("an ERROR event carries its status; 410 Gone is recognisable", () => {
  const gone = JSON.stringify({
    type: "ERROR",
    object: { kind: "Status", code: 410, message: "too old resource version" },
  });
  assert.equal(parseWatchLine(gone), { error: { code: 410, message: "too old resource version" } });
});

test("unreadable lines and unknown types are skipped", () => {
  assert.is(parseWatchLine("{not json"), undefined);
  assert.is(parseWatchLine(line("SOMETHING", { name: "x", resourceVersion: "1" })), undefined);
  assert.is(parseWatchLine(line("ADDED", { name: "x" })), undefined);
});

test.run();

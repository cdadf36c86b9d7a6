import assert from "node:assert/strict";
import { test } from "node:test";
import { RecordSources } from "./record-source.ts";
import type { LinePosition } from "./types.ts";

const at = (file: string, fileId = "f-1", source = "access"): LinePosition => ({
  source,
  file,
  fileId,
  offset: 0,
  end: 1,
  seq: 0,
});

test("a record's source is the host and its log: a log's rotated files are one source, other logs and hosts others", () => {
  const s = new RecordSources("gift-1");
  assert.equal(s.of(at("/var/log/gift-svc/access.log")), "gift-1:/var/log/gift-svc/access.log");
  assert.equal(s.of(at("/var/log/gift-svc/access.log.2")), "gift-1:/var/log/gift-svc/access.log");
  assert.equal(s.of(at("/var/log/pay-svc/access.log.1")), "gift-1:/var/log/pay-svc/access.log");
  assert.equal(
    new RecordSources("gift-2").of(at("/var/log/gift-svc/access.log")),
    "gift-2:/var/log/gift-svc/access.log",
  );
  assert.equal(s.of(at("-", "stdin-1795165838240", "batch-job")), "gift-1:stdin:batch-job");
});

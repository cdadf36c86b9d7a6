import assert from "node:assert/strict";
import { test } from "node:test";
import { derivedId, fingerprintId, fingerprintLength, hashHead, parseFileId } from "./fingerprint.ts";

const length = (text: string, n = 16) => fingerprintLength(Buffer.from(text), Buffer.byteLength(text), n);

test("the fingerprint covers fingerprintBytes, or the complete lines of a shorter file, or nothing yet", () => {
  assert.equal(length("0123456789abcdefXYZ"), 16, "long enough: the first fingerprintBytes, newline or not");
  assert.equal(length("0123456789abcdef"), 16);
  assert.equal(length("ab\ncd\nef"), 6, "short: up to the last newline");
  assert.equal(length("ab\n"), 3);
  assert.equal(length("no newline yet"), 0, "short without a complete line: not identified, not read");
  assert.equal(length(""), 0);
});

test("the covered bytes do not change as the file grows, so neither does the id", () => {
  const early = Buffer.from("first line\n");
  const later = Buffer.from("first line\nsecond line, much longer than sixteen bytes\n");
  const n = fingerprintLength(early, early.length, 256);
  assert.equal(hashHead(early, n), hashHead(later, n));
});

test("fileIds carry the bytes they cover; derived ids name the inode; foreign ids are refused", () => {
  const id = fingerprintId(hashHead(Buffer.from("x\n"), 2), 2);
  assert.match(id, /^[0-9a-f]{32}-2$/);
  assert.deepEqual(parseFileId(id), { fingerprint: id, length: 2 });
  assert.deepEqual(parseFileId(derivedId(id, 64768, 1234, 0)), { fingerprint: id, length: 2 });
  assert.deepEqual(parseFileId(derivedId(id, 64768, 1234, 3)), { fingerprint: id, length: 2 });
  assert.equal(derivedId(id, 1, 2, 0) === derivedId(id, 1, 2, 1), false);
  assert.equal(parseFileId("stdin-1700000000000"), null);
  assert.equal(parseFileId(`${"a".repeat(32)}-0`), null);
});

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeAccessFile } from "./access-file.ts";
import { Digest } from "./digest.ts";

const digestOf = (xs: string[]) => {
  const d = new Digest();
  for (const x of xs) d.add(x);
  return d;
};

test("a digest does not depend on the order of the messages", () => {
  const lines = ["alpha", "bravo", "charlie", "delta"];
  assert.equal(digestOf(lines).difference(digestOf([...lines].reverse())), "");
  assert.ok(digestOf(lines).equals(digestOf(["charlie", "alpha", "delta", "bravo"])));
});

test("a digest tells a missing message, a changed byte and a duplicate in place of a line", () => {
  const want = digestOf(["line-1", "line-2", "line-3"]);
  assert.match(digestOf(["line-1", "line-2"]).difference(want), /2 messages where 3 lines/);
  assert.match(digestOf(["line-1", "line-2", "line-3x"]).difference(want), /bytes/);
  assert.equal(
    digestOf(["line-1", "line-2", "line-4"]).difference(want),
    "the same count and bytes, different contents",
  );
  // Same count, same total bytes: line-3 lost, line-2 delivered twice.
  assert.equal(
    digestOf(["line-1", "line-2", "line-2"]).difference(want),
    "the same count and bytes, different contents",
  );
  // Bytes and strings digest alike.
  assert.ok(
    digestOf(["line-1"]).equals(
      (() => {
        const d = new Digest();
        d.add(Buffer.from("line-1"));
        return d;
      })(),
    ),
  );
});

test("the access file holds exactly the lines its digest describes", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-access-file-"));
  try {
    const file = join(dir, "access.log");
    const a = writeAccessFile(file, 3000, 7);
    assert.equal(a.lines, 3000);
    assert.equal(a.bytes, statSync(file).size);
    const lines = readFileSync(file, "utf8").split("\n");
    assert.equal(lines.pop(), "", "the file ends with a newline");
    assert.equal(lines.length, 3000);
    assert.equal(digestOf(lines).difference(a.lineDigest), "");
    for (const l of lines.slice(0, 50)) assert.equal(typeof JSON.parse(l).id, "string");
    // The simulator's lines, not a toy: about 300-400 bytes each.
    assert.ok(a.bytes / a.lines > 250 && a.bytes / a.lines < 500, `${a.bytes / a.lines} bytes a line`);
    // Deterministic for a seed.
    const again = writeAccessFile(join(dir, "again.log"), 3000, 7);
    assert.ok(again.lineDigest.equals(a.lineDigest));
    assert.ok(again.fieldsDigest.equals(a.fieldsDigest));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

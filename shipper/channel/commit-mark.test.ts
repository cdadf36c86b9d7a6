import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readCommitMark, writeCommitMark } from "./commit-mark.ts";

function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "weir-mark-"));
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test("a written mark is read back, past 2^32 too; without one the mark is 0", () =>
  withDir(async (dir) => {
    assert.equal(readCommitMark(dir, undefined), 0);
    await writeCommitMark(dir, 41);
    assert.equal(readCommitMark(dir, undefined), 41);
    await writeCommitMark(dir, 2 ** 32 + 7);
    assert.equal(readCommitMark(dir, undefined), 2 ** 32 + 7);
    assert.equal(readFileSync(join(dir, "COMMITTED")).length, 16);
  }));

test("a damaged mark reads as 0 with a warning (deliver again rather than lose); a stale temp file goes", () =>
  withDir(async (dir) => {
    await writeCommitMark(dir, 1000);
    const mark = readFileSync(join(dir, "COMMITTED"));
    mark[5] = (mark[5] as number) ^ 0x01;
    writeFileSync(join(dir, "COMMITTED"), mark);
    writeFileSync(join(dir, "COMMITTED.tmp"), "torn");
    const warnings: unknown[] = [];
    assert.equal(readCommitMark(dir, { warn: (o: unknown) => warnings.push(o) } as never), 0);
    assert.equal(warnings.length, 1);
    assert.equal(existsSync(join(dir, "COMMITTED.tmp")), false);
  }));

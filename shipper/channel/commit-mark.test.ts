import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { crc32c } from "@node-rs/crc32";
import { CommitMark, readCommitMark } from "./commit-mark.ts";

function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "weir-mark-"));
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function flip(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = (b[at] as number) ^ 0x01;
  writeFileSync(file, b);
}

test("a written mark is read back, past 2^32 too; without one the mark is 0; the file is written once, then in place", () =>
  withDir(async (dir) => {
    const { mark, seq } = await CommitMark.open(dir, undefined);
    assert.equal(seq, 0);
    assert.equal(readFileSync(join(dir, "COMMITTED")).length, 1024);
    await mark.write(41);
    assert.equal(readCommitMark(dir, undefined), 41);
    await mark.write(2 ** 32 + 7);
    assert.equal(readCommitMark(dir, undefined), 2 ** 32 + 7);
    await mark.write(2 ** 32 + 9);
    await mark.close();
    assert.equal(readFileSync(join(dir, "COMMITTED")).length, 1024);
    // Reopened: the latest mark, and the next write goes over the older slot.
    const again = await CommitMark.open(dir, undefined);
    assert.equal(again.seq, 2 ** 32 + 9);
    await again.mark.write(2 ** 32 + 10);
    await again.mark.close();
    assert.equal(readCommitMark(dir, undefined), 2 ** 32 + 10);
  }));

test("a torn slot leaves the mark before it; both damaged read as 0 with a warning (deliver again rather than lose)", () =>
  withDir(async (dir) => {
    const { mark } = await CommitMark.open(dir, undefined);
    await mark.write(1000); // slot 1
    await mark.write(2000); // slot 0
    await mark.close();
    const file = join(dir, "COMMITTED");
    flip(file, 5); // slot 0, the newer
    const warnings: unknown[] = [];
    const logger = { warn: (o: unknown) => warnings.push(o) } as never;
    assert.equal(readCommitMark(dir, logger), 1000);
    assert.equal(warnings.length, 0);
    flip(file, 512 + 6);
    writeFileSync(join(dir, "COMMITTED.tmp"), "torn");
    assert.equal(readCommitMark(dir, logger), 0);
    assert.equal(warnings.length, 1);
    assert.equal(existsSync(join(dir, "COMMITTED.tmp")), false);
  }));

test("the 16-byte mark of an older weir is read, and replaced by the two-slot file", () =>
  withDir(async (dir) => {
    const old = Buffer.alloc(16);
    old.writeUInt32LE(0x314d4357, 0);
    old.writeUInt32LE(777, 4);
    old.writeUInt32LE(0, 8);
    old.writeUInt32LE(crc32c(old.subarray(0, 12)), 12);
    writeFileSync(join(dir, "COMMITTED"), old);
    const { mark, seq } = await CommitMark.open(dir, undefined);
    assert.equal(seq, 777);
    assert.equal(readFileSync(join(dir, "COMMITTED")).length, 1024);
    assert.equal(readCommitMark(dir, undefined), 777);
    await mark.write(800);
    await mark.close();
    assert.equal(readCommitMark(dir, undefined), 800);
  }));

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CheckpointStore } from "./checkpoints.ts";
import type { LinePosition } from "./types.ts";

const pos = (fileId: string, offset: number, end: number, seq: number): LinePosition => ({
  source: "s",
  file: `/logs/${fileId}.log`,
  fileId,
  offset,
  end,
  seq,
});

test("checkpoints move forward only, survive a reload, and are written only when they moved", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-ckpt-"));
  try {
    const path = join(dir, "checkpoints.json");
    const a = CheckpointStore.load(path, assert.fail);
    a.advance(pos("f1", 0, 100, 0));
    a.advance(pos("f1", 100, 250, 1));
    a.advance(pos("f1", 0, 100, 0)); // a re-delivered older line must not move it back
    a.advance(pos("f2", 0, 10, 0));
    assert.equal(a.save(false), true);
    assert.equal(a.save(false), false);
    assert.equal(a.save(true), true); // written before, not yet fsynced
    assert.equal(a.save(true), false);
    assert.deepEqual(readdirSync(dir), ["checkpoints.json"]);

    const b = CheckpointStore.load(path, assert.fail);
    assert.deepEqual(b.get("f1"), { source: "s", fileId: "f1", offset: 250, seq: 2, path: "/logs/f1.log" });
    assert.deepEqual(b.get("f2"), { source: "s", fileId: "f2", offset: 10, seq: 1, path: "/logs/f2.log" });
    assert.equal(b.resumePoints().length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unreadable checkpoint file is moved aside and reported, not trusted", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-ckpt-"));
  try {
    const path = join(dir, "checkpoints.json");
    writeFileSync(path, '{"version":1,"files":{"f1":{"offset":');
    const reports: string[] = [];
    const store = CheckpointStore.load(path, (m) => reports.push(m));
    assert.equal(store.size, 0);
    assert.equal(reports.length, 1);
    assert.match(reports[0] ?? "", /unreadable/);
    assert.equal(existsSync(path), false);
    const aside = readdirSync(dir).find((f) => f.startsWith("checkpoints.json.corrupt-"));
    assert.ok(aside);
    assert.match(readFileSync(join(dir, aside), "utf8"), /"offset":$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("prune forgets idle files that no source has open", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-ckpt-"));
  try {
    const store = CheckpointStore.load(join(dir, "c.json"), assert.fail);
    store.advance(pos("old", 0, 5, 0));
    store.advance(pos("open", 0, 5, 0));
    assert.equal(store.prune(1000, new Set(["open"]), Date.now() + 5000), 1);
    assert.equal(store.get("old"), undefined);
    assert.ok(store.get("open"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

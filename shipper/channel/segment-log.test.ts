import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { encodeRecords, frameBytes, SEGMENT_HEADER_BYTES, segmentFileName } from "./segment.ts";
import { type LogOptions, SegmentLog } from "./segment-log.ts";

function withDir(f: (options: LogOptions) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "weir-log-"));
  const options: LogOptions = { dir, synced: true, readChunkBytes: 256, logger: undefined };
  return f(options).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** Records firstSeq.. as one framed batch of `n` 20-byte payloads. */
function batch(firstSeq: number, n: number): { buf: Buffer; bytes: number } {
  const payloads = Array.from({ length: n }, (_, k) => Buffer.from(`record ${String(firstSeq + k).padStart(13, "0")}`));
  const bytes = n * frameBytes(20);
  return { buf: encodeRecords(payloads, firstSeq, bytes), bytes };
}

test("an empty directory gets its first segment; records appended, rolled and synced are found again", () =>
  withDir(async (options) => {
    const first = await SegmentLog.recover(options, 0);
    assert.deepEqual(readdirSync(options.dir), [segmentFileName(1)]);
    assert.deepEqual(
      {
        nextSeq: first.nextSeq,
        end: first.end,
        firstUncommitted: first.firstUncommitted,
        uncommitted: first.uncommitted,
      },
      { nextSeq: 1, end: 0, firstUncommitted: -1, uncommitted: 0 },
    );
    const log = first.log;
    const a = batch(1, 10);
    await log.append([a.buf], a.bytes);
    await log.roll(11, a.bytes);
    const b = batch(11, 5);
    await log.append([b.buf], b.bytes);
    assert.equal(log.unsynced, true, "the rolled segment and the new directory entry wait for a sync");
    await log.sync(true);
    assert.equal(log.unsynced, false);
    assert.equal(log.fsyncs, 2);
    assert.equal(log.diskBytes(), 2 * SEGMENT_HEADER_BYTES + a.bytes + b.bytes);
    log.closeSync();

    // Committed up to 8: both segments are scanned, records 9..15 are not committed yet.
    const again = await SegmentLog.recover(options, 8);
    assert.equal(again.nextSeq, 16);
    assert.equal(again.end, a.bytes + b.bytes);
    assert.equal(again.uncommitted, 7);
    assert.equal(again.firstUncommitted, 8 * frameBytes(20));
    assert.equal(again.log.segments.length, 2);
    assert.equal(again.log.deletable(9), false, "record 10 is not committed");
    assert.equal(again.log.deletable(10), true);
    assert.equal((await again.log.deleteOldest()).firstSeq, 1);
    assert.equal(again.log.deletable(15), false, "the active segment stays");
    assert.deepEqual(readdirSync(options.dir), [segmentFileName(11)]);
    again.log.closeSync();

    // Committed up to 12: logical offsets start at the first segment left.
    const later = await SegmentLog.recover(options, 12);
    assert.equal(later.nextSeq, 16);
    assert.equal(later.end, b.bytes);
    assert.equal(later.uncommitted, 3);
    assert.equal(later.firstUncommitted, 2 * frameBytes(20));
    later.log.closeSync();
  }));

test("a torn tail of the last segment is cut on recovery, the records before it kept", () =>
  withDir(async (options) => {
    const { log } = await SegmentLog.recover(options, 0);
    const a = batch(1, 4);
    await log.append([a.buf], a.bytes);
    log.closeSync();
    const file = join(options.dir, segmentFileName(1));
    appendFileSync(file, batch(5, 1).buf.subarray(0, 25));
    const found = await SegmentLog.recover(options, 0);
    assert.equal(found.truncatedBytes, 25);
    assert.equal(found.corruptRecords, 0);
    assert.equal(found.nextSeq, 5);
    assert.equal(found.uncommitted, 4);
    assert.equal(statSync(file).size, SEGMENT_HEADER_BYTES + a.bytes);
    found.log.closeSync();
  }));

test("an emptied active segment takes later records under its name, and recovery finds them and the next seq", () =>
  withDir(async (options) => {
    const { log } = await SegmentLog.recover(options, 0);
    const a = batch(1, 10);
    await log.append([a.buf], a.bytes);
    // Every record delivered, the disk full: the segment is emptied and written on at the same logical end.
    const seg = await log.resetActive(a.bytes);
    assert.equal(seg.base, a.bytes);
    assert.equal(log.diskBytes(), SEGMENT_HEADER_BYTES);
    const file = join(options.dir, segmentFileName(1));
    assert.equal(statSync(file).size, SEGMENT_HEADER_BYTES);
    const b = batch(11, 5);
    await log.append([b.buf], b.bytes);
    log.closeSync();

    // The mark said 10 (or less: a mark not written for lack of space): records 11..15 come back.
    for (const committed of [10, 3]) {
      const found = await SegmentLog.recover(options, committed);
      assert.equal(found.corruptRecords, 0);
      assert.equal(found.truncatedBytes, 0);
      assert.equal(found.nextSeq, 16);
      assert.equal(found.uncommitted, 5);
      assert.equal(found.firstUncommitted, 0);
      found.log.closeSync();
    }
  }));

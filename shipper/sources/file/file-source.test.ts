// The file source reading files, against real files in a temp dir: partial writes, huge lines,
// backpressure and fairness, deleted and idle files, startAt end, the last line of a file gone, a sink
// that fails. Scanning and identity (globs, rotation, restarts, inode reuse, short files) are in
// file-scanner.test.ts. Waits are for conditions ("until N lines arrived"), never for durations
// asserted on.
import assert from "node:assert/strict";
import {
  appendFileSync,
  closeSync,
  openSync,
  renameSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { RawLine } from "../../types.ts";
import { FileSource } from "./file-source.ts";
import {
  assertEachOnce,
  assertOrderedPerFile,
  Collector,
  FAST,
  numbered,
  numberOf,
  silent,
  source,
  TestDirs,
  until,
} from "./testdata/harness.ts";

const dirs = new TestDirs();
after(() => dirs.remove());
const newDir = () => dirs.newDir();

test("a file written in pieces yields exact lines, offsets, ends and seqs; a last line waits for its newline", async () => {
  const dir = newDir();
  const path = join(dir, "app.log");
  writeFileSync(path, "hel");
  const c = new Collector();
  const src = source(c, { paths: [path] });
  await src.start();
  try {
    const fd = openSync(path, "a");
    const pieces = ["lo\nwor", "ld\r\n", "", "par", "tial", "\n\nlast"];
    let written = 3;
    for (const piece of pieces) {
      writeSync(fd, piece);
      written += piece.length;
      // The source has seen every byte before the next piece is written.
      await until(() => src.states()[0]?.offset === written, `offset ${written}`);
    }
    closeSync(fd);
    // The offset moves when bytes are read; the lines reach the sink just after.
    await until(() => c.lines.length === 4, "four lines delivered");
    assert.deepEqual(
      c.lines.map((l) => [l.bytes.toString(), l.size, l.offset, l.end, l.seq]),
      [
        ["hello", 5, 0, 6, 0],
        ["world", 5, 6, 13, 1],
        ["partial", 7, 13, 21, 2],
        ["", 0, 21, 22, 3],
      ],
    );
    assert.equal(c.lines[0]?.file, path);
    assert.match(c.lines[0]?.fileId ?? "", /^[0-9a-f]{32}-6$/, "a short file is identified by its complete lines");
    assert.ok(
      c.lines.every((l) => l.fileId === c.lines[0]?.fileId && l.source === "test"),
      "one file, one fileId",
    );
    const state = src.states()[0];
    assert.deepEqual([state?.offset, state?.size, state?.open, state?.deleted], [26, 26, true, false]);
  } finally {
    await src.stop();
  }
});

test("a 10 MiB line is cut to maxLineBytes with its true size, holding no more than maxLineBytes", async () => {
  const dir = newDir();
  const path = join(dir, "big.log");
  writeFileSync(path, "short\n");
  const c = new Collector();
  const src = source(c, { paths: [path], maxLineBytes: 1024 * 1024 });
  await src.start();
  try {
    await until(() => c.lines.length === 1, "the first line");
    const piece = Buffer.alloc(1024 * 1024, "x");
    for (let k = 0; k < 10; k++) {
      appendFileSync(path, piece);
      await sleep(2);
    }
    appendFileSync(path, "\r\nafter\n");
    await until(() => c.lines.length === 3, "three lines");
    const [, big, next] = c.lines;
    assert.equal(big?.bytes.length, 1024 * 1024);
    assert.equal(big?.size, 10 * 1024 * 1024);
    assert.ok(big?.bytes.every((b) => b === 0x78));
    assert.deepEqual([big?.offset, big?.end, big?.seq], [6, 6 + 10 * 1024 * 1024 + 2, 1]);
    assert.deepEqual([next?.bytes.toString(), next?.offset, next?.seq], ["after", big?.end, 2]);
    const stats = src.stats();
    assert.equal(stats.linesCut, 1);
    assert.ok(stats.largestLineBuffer <= 1024 * 1024, `held ${stats.largestLineBuffer} bytes of one line`);
  } finally {
    await src.stop();
  }
});

test("backpressure: while the sink holds a batch nothing more is read; one busy file does not starve the others", async () => {
  const dir = newDir();
  let big = "";
  for (let i = 0; i < 60_000; i++) big += numbered(i);
  writeFileSync(join(dir, "busy.log"), big);
  writeFileSync(join(dir, "quiet-1.log"), "q1\n");
  writeFileSync(join(dir, "quiet-2.log"), "q2\n");
  const c = new Collector();
  const firstCall: RawLine[][] = [];
  c.onCall = (lines) => {
    if (firstCall.length === 0) firstCall.push(lines);
  };
  c.hold();
  const chunk = 64 * 1024;
  const src = source(c, { paths: [join(dir, "*.log")], readChunkBytes: chunk, maxBatchLines: 100_000 });
  await src.start();
  try {
    await until(() => c.calls === 1, "the first batch");
    // Whatever the time the sink takes, the source does not read on.
    await sleep(300);
    assert.equal(c.calls, 1);
    assert.ok(src.stats().bytesRead <= chunk + 6, `read ${src.stats().bytesRead} bytes with the sink blocked`);
    const first = firstCall[0] ?? [];
    assert.deepEqual(
      new Set(first.map((l) => l.file.split("/").pop())),
      new Set(["busy.log", "quiet-1.log", "quiet-2.log"]),
      "one round reads every file",
    );
    c.release();
    await until(() => c.lines.length === 60_002, "every line");
    assertOrderedPerFile(c.lines.filter((l) => l.file.endsWith("busy.log")));
  } finally {
    c.release();
    await src.stop();
  }
});

test("a file deleted while open is reported deleted, read to its end, then closed", async () => {
  const dir = newDir();
  const path = join(dir, "app.log");
  let text = "";
  for (let i = 0; i < 100; i++) text += numbered(i);
  writeFileSync(path, text);
  const c = new Collector();
  c.hold();
  const reported: boolean[] = [];
  c.onCall = () => {
    if (c.calls === 2) reported.push(...src.states().map((s) => s.deleted && s.open));
  };
  const src = source(c, { paths: [path], maxBatchLines: 1000 });
  await src.start();
  try {
    await until(() => c.calls === 1, "the first batch");
    let more = "";
    for (let i = 100; i < 150; i++) more += numbered(i);
    appendFileSync(path, more);
    unlinkSync(path);
    c.release();
    await until(() => c.lines.length === 150, "the lines written before the delete");
    assert.deepEqual(reported, [true], "open and reported deleted while its last lines were read");
    await until(() => src.states().length === 0, "closed");
    assert.deepEqual([src.stats().deletions, src.stats().filesClosed], [1, 1]);
    assertEachOnce(c.lines, 150, "deleted file");
  } finally {
    c.release();
    await src.stop();
  }
});

test("an idle file is closed, and reopened where it was when it grows", async () => {
  const dir = newDir();
  const path = join(dir, "app.log");
  writeFileSync(path, "a\nb\n");
  const c = new Collector();
  const src = source(c, { paths: [path], closeIdleMs: 30 });
  await src.start();
  try {
    await until(() => src.states()[0]?.open === false, "closed as idle");
    assert.deepEqual(
      src.states().map((s) => [s.offset, s.size, s.open]),
      [[4, 4, false]],
    );
    appendFileSync(path, "c\n");
    await until(() => c.lines.length === 3, "the new line");
    assert.deepEqual(
      c.lines.map((l) => [l.bytes.toString(), l.offset, l.seq, l.fileId === c.lines[0]?.fileId]),
      [
        ["a", 0, 0, true],
        ["b", 2, 1, true],
        ["c", 4, 2, true],
      ],
    );
    assert.equal(src.stats().filesOpened, 2);
  } finally {
    await src.stop();
  }
});

test("startAt end: files found at start begin at their last line; files that appear later begin at 0", async () => {
  const dir = newDir();
  writeFileSync(join(dir, "old.log"), "old 1\nold 2\npar");
  const c = new Collector();
  const src = source(c, { paths: [join(dir, "*.log")], startAt: "end" });
  await src.start();
  try {
    appendFileSync(join(dir, "old.log"), "tial\nnew\n");
    writeFileSync(join(dir, "later.log"), "later 1\nlater 2\n");
    await until(() => c.lines.length === 4, "four lines");
    assert.deepEqual(c.texts().sort(), ["later 1", "later 2", "new", "partial"]);
  } finally {
    await src.stop();
  }
});

test("the last line of a renamed-away file, never given its newline, is shipped once the file is quiet", async () => {
  const dir = newDir();
  const path = join(dir, "app.log");
  writeFileSync(path, "one\ntwo\nunfinished");
  const c = new Collector();
  const src = source(c, { paths: [path] });
  await src.start();
  try {
    await until(() => c.lines.length === 2, "the complete lines");
    assert.equal(src.stats().partialLinesFlushed, 0, "a live file's last line waits for its newline");
    renameSync(path, `${path}.1`);
    writeFileSync(path, "new\n");
    await until(() => c.lines.length === 4, "the unfinished line and the new file");
    const last = c.lines.find((l) => l.bytes.toString() === "unfinished");
    assert.deepEqual([last?.offset, last?.end, last?.seq], [8, 18, 2]);
    assert.equal(src.stats().partialLinesFlushed, 1);
    await until(() => src.states().length === 1, "the rotated file closed");
  } finally {
    await src.stop();
  }
});

test("a sink that rejects stops the source and is reported once", async () => {
  const dir = newDir();
  writeFileSync(join(dir, "app.log"), "a\nb\n");
  const errors: Error[] = [];
  let calls = 0;
  const src = new FileSource(
    { name: "test", paths: [join(dir, "*.log")], ...FAST },
    {
      sink: async () => {
        calls++;
        throw new Error("channel closed");
      },
      logger: silent,
      onError: (err) => errors.push(err),
    },
  );
  await src.start();
  await until(() => errors.length === 1, "the error");
  appendFileSync(join(dir, "app.log"), "c\n");
  await sleep(100);
  assert.equal(calls, 1, "nothing read or delivered after the failure");
  assert.match(errors[0]?.message ?? "", /channel closed/);
  await src.stop();
  assert.deepEqual(src.states(), [], "files closed");
});

test("a log's rotated backlog is read oldest first, one file after the other; different logs side by side", async () => {
  const dir = newDir();
  // room's log rotated twice before the source starts, im's not at all: a shipper started on a backlog.
  const room = join(dir, "room-access.log");
  const im = join(dir, "im-access.log");
  let n = 0;
  const write = (path: string, lines: number, mtimeS: number) => {
    let text = "";
    for (let i = 0; i < lines; i++) text += numbered(n++);
    writeFileSync(path, text);
    utimesSync(path, mtimeS, mtimeS);
  };
  write(`${room}.2`, 3000, 1000);
  write(`${room}.1`, 3000, 2000);
  write(room, 3000, 3000);
  write(im, 3000, 3000);
  const c = new Collector();
  const src = source(c, { paths: [`${dir}/*.log*`], readChunkBytes: 4096 });
  await src.start();
  try {
    await until(() => c.lines.length === 12_000, "every line");
    assertEachOnce(c.lines, 12_000, "each line once");
    const roomLines = c.lines.filter((l) => l.file.startsWith(room)).map(numberOf);
    assert.deepEqual(
      roomLines,
      Array.from({ length: 9000 }, (_, i) => i),
      "room's lines in the order they were written: .2, then .1, then the live file",
    );
    // im's log is read alongside: its first lines come long before room's last ones.
    const firstIm = c.lines.findIndex((l) => l.file === im);
    assert.ok(firstIm < 3000, `im's first line delivered at ${firstIm}`);
  } finally {
    await src.stop();
  }
});

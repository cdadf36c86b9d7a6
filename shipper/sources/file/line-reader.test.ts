// The line rules, whatever the chunk boundaries: split on \n, strip one \r before it, cut at
// maxLineBytes keeping the true size, hold no more than maxLineBytes of a long line, stop when the
// batch is full and carry on from there.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RawLine } from "../../types.ts";
import { LineBatch, LineReader } from "./line-reader.ts";

const origin = { source: "s", file: "/f.log", fileId: "id" };

interface Expected {
  text: string;
  size: number;
  offset: number;
  end: number;
}

/** The rules, written the obvious way over the whole input. */
function reference(input: Buffer, max: number): Expected[] {
  const out: Expected[] = [];
  let start = 0;
  for (;;) {
    const nl = input.indexOf(0x0a, start);
    if (nl === -1) return out;
    let contentEnd = nl;
    if (contentEnd > start && input[contentEnd - 1] === 0x0d) contentEnd--;
    const size = contentEnd - start;
    out.push({
      text: input.subarray(start, start + Math.min(size, max)).toString("latin1"),
      size,
      offset: start,
      end: nl + 1,
    });
    start = nl + 1;
  }
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomInput(rand: () => number, max: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < 300; i++) {
    const r = rand();
    const length = r < 0.05 ? max + Math.floor(rand() * max * 3) : r < 0.1 ? 0 : Math.floor(rand() * 40);
    let line = "";
    for (let j = 0; j < length; j++) line += String.fromCharCode(97 + Math.floor(rand() * 26));
    if (rand() < 0.1) line += "\r";
    if (rand() < 0.03) line += "\r\r";
    parts.push(`${line}\n`);
  }
  return Buffer.from(`${parts.join("")}tail-without-newline`, "latin1");
}

function feed(
  input: Buffer,
  max: number,
  cuts: number[],
  batchLines = 1_000_000,
): { lines: RawLine[]; reader: LineReader } {
  const reader = new LineReader(origin, max, 0, 0);
  const lines: RawLine[] = [];
  const batch = new LineBatch(batchLines, Number.MAX_SAFE_INTEGER);
  let from = 0;
  for (const to of [...cuts, input.length]) {
    const chunk = input.subarray(from, to);
    let pos = 0;
    while (pos < chunk.length) {
      pos = reader.push(chunk, pos, batch);
      if (batch.full) lines.push(...batch.take());
    }
    from = to;
  }
  lines.push(...batch.take());
  return { lines, reader };
}

test("lines are the same whatever the chunk boundaries, cut at maxLineBytes with their true size", () => {
  const max = 64;
  for (let seed = 1; seed <= 20; seed++) {
    const rand = seeded(seed);
    const input = randomInput(rand, max);
    const cuts: number[] = [];
    for (let at = 0; ; ) {
      at += 1 + Math.floor(rand() * (seed % 2 ? 7 : 300));
      if (at >= input.length) break;
      cuts.push(at);
    }
    const expected = reference(input, max);
    const { lines, reader } = feed(input, max, cuts, 1 + (seed % 5));
    assert.deepEqual(
      lines.map((l) => ({ text: l.bytes.toString("latin1"), size: l.size, offset: l.offset, end: l.end })),
      expected,
      `seed ${seed}`,
    );
    assert.deepEqual(
      lines.map((l) => l.seq),
      expected.map((_, i) => i),
    );
    assert.ok(reader.largestHeld <= max, `held ${reader.largestHeld} bytes of a line, more than maxLineBytes`);
    assert.equal(reader.lineStart, expected.at(-1)?.end);
    assert.equal(reader.pendingBytes, "tail-without-newline".length);
  }
});

test("a line that fits in its chunk is a view of it; one that spans chunks is copied once", () => {
  const chunk = Buffer.from("abc\ndef");
  const reader = new LineReader(origin, 100, 0, 0);
  const batch = new LineBatch(10, 1000);
  reader.push(chunk, 0, batch);
  reader.push(Buffer.from("gh\n"), 0, batch);
  const [first, second] = batch.take();
  assert.equal(first?.bytes.buffer, chunk.buffer);
  assert.equal(first?.bytes.byteOffset, chunk.byteOffset);
  assert.equal(second?.bytes.toString(), "defgh");
  assert.equal(second?.offset, 4);
  assert.equal(second?.end, 10);
});

test("a full batch stops the reader mid-chunk; pushing again carries on from there", () => {
  const reader = new LineReader(origin, 100, 1000, 7);
  const batch = new LineBatch(2, 1000);
  const chunk = Buffer.from("a\nb\nc\nd\n");
  const stop = reader.push(chunk, 0, batch);
  assert.equal(stop, 4);
  assert.deepEqual(
    batch.take().map((l) => [l.bytes.toString(), l.offset, l.end, l.seq]),
    [
      ["a", 1000, 1002, 7],
      ["b", 1002, 1004, 8],
    ],
  );
  assert.equal(reader.push(chunk, stop, batch), chunk.length);
  assert.deepEqual(
    batch.take().map((l) => [l.bytes.toString(), l.seq]),
    [
      ["c", 9],
      ["d", 10],
    ],
  );
});

test("flushPartial ships the bytes after the last newline as a line ending at the end of the data", () => {
  const reader = new LineReader(origin, 4, 0, 0);
  const batch = new LineBatch(10, 1000);
  reader.push(Buffer.from("x\npartial-"), 0, batch);
  reader.push(Buffer.from("line\r"), 0, batch);
  assert.equal(batch.lines.length, 1);
  assert.equal(reader.flushPartial(batch), true);
  const last = batch.lines[1];
  assert.deepEqual([last?.bytes.toString(), last?.size, last?.offset, last?.end, last?.seq], ["part", 12, 2, 15, 1]);
  assert.equal(reader.flushPartial(batch), false, "nothing left to flush");
  assert.equal(batch.cut, 1);
});

test("a reader started mid-line drops the rest of that line", () => {
  const reader = new LineReader(origin, 100, 50, 0, { discardFirstLine: true });
  const batch = new LineBatch(10, 1000);
  reader.push(Buffer.from("end-of-something\nnext\n"), 0, batch);
  assert.deepEqual(
    batch.lines.map((l) => [l.bytes.toString(), l.offset, l.seq]),
    [["next", 67, 0]],
  );
});

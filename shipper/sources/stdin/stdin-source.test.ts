import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import type { RawLine } from "../../types.ts";
import { StdinSource } from "./stdin-source.ts";

const silent = pino({ level: "silent" });

test("lines from a Readable: pieces joined, \\r\\n stripped, byte offsets, the last line shipped at the end", async () => {
  const lines: RawLine[] = [];
  const input = Readable.from([
    Buffer.from("hel"),
    Buffer.from("lo\r\nwor"),
    Buffer.from("ld\n\n"),
    Buffer.from("end"),
  ]);
  const src = new StdinSource({ name: "in" }, { sink: async (l) => void lines.push(...l), input, logger: silent });
  src.start();
  await src.done;
  assert.match(src.fileId, /^stdin-\d+$/);
  assert.deepEqual(
    lines.map((l) => [l.bytes.toString(), l.size, l.offset, l.end, l.seq]),
    [
      ["hello", 5, 0, 7, 0],
      ["world", 5, 7, 13, 1],
      ["", 0, 13, 14, 2],
      ["end", 3, 14, 17, 3],
    ],
  );
  assert.ok(lines.every((l) => l.fileId === src.fileId && l.source === "in" && l.file === "stdin"));
  assert.deepEqual(src.stats(), { linesRead: 4, bytesRead: 17, linesCut: 0, largestLineBuffer: 256 });
});

test("a slow sink pauses the stream: what is read stays bounded, nothing is lost", async () => {
  const input = new PassThrough({ highWaterMark: 16 * 1024 });
  const lines: RawLine[] = [];
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let calls = 0;
  const src = new StdinSource(
    { name: "in", maxBatchLines: 100 },
    {
      sink: async (l) => {
        calls++;
        await held;
        lines.push(...l);
      },
      input,
      logger: silent,
    },
  );
  src.start();
  let text = "";
  for (let i = 0; i < 20_000; i++) text += `line ${i}\n`;
  const total = Buffer.byteLength(text);
  // write() says when the stream's buffer is full: the writer would block on the pipe here.
  let accepted = true;
  let offered = 0;
  while (accepted && offered < total) {
    const piece = text.slice(offered, offered + 4096);
    accepted = input.write(piece);
    offered += piece.length;
  }
  await sleep(100);
  assert.equal(calls, 1, "one batch in the sink");
  assert.ok(input.isPaused(), "paused while the sink is busy");
  assert.ok(src.stats().bytesRead <= 64 * 1024, `read ${src.stats().bytesRead} bytes while the sink was busy`);
  assert.ok(offered < total, "the writer is held back");
  release();
  input.end(text.slice(offered));
  await src.done;
  assert.equal(lines.length, 20_000);
  assert.deepEqual(
    lines.slice(-2).map((l) => l.bytes.toString()),
    ["line 19998", "line 19999"],
  );
  assert.equal(lines.at(-1)?.end, total);
});

test("a long line is cut to maxLineBytes with its true size, without holding it whole", async () => {
  const lines: RawLine[] = [];
  const big = Buffer.alloc(1024 * 1024, "y");
  const input = Readable.from([Buffer.from("a\n"), big, big, big, Buffer.from("\nb\n")]);
  const src = new StdinSource(
    { name: "in", maxLineBytes: 1000 },
    { sink: async (l) => void lines.push(...l), input, logger: silent },
  );
  src.start();
  await src.done;
  assert.deepEqual(
    lines.map((l) => [l.bytes.length, l.size, l.seq]),
    [
      [1, 1, 0],
      [1000, 3 * 1024 * 1024, 1],
      [1, 1, 2],
    ],
  );
  assert.ok(src.stats().largestLineBuffer <= 1000);
  assert.equal(src.stats().linesCut, 1);
});

test("a failing sink rejects done and stops reading", async () => {
  const input = Readable.from([Buffer.from("a\nb\n")]);
  const src = new StdinSource(
    { name: "in" },
    {
      sink: async () => {
        throw new Error("channel full");
      },
      input,
      logger: silent,
    },
  );
  src.start();
  await assert.rejects(src.done, /channel full/);
});

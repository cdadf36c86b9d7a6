import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RawLine } from "../types.ts";
import { MultilineMerger } from "./multiline.ts";
import { TEXT_EVENT_START } from "./text.ts";

/** Lines of a file as the tail gives them, from a byte offset and a seq on (a resume point). */
function lines(text: string, fileId = "f", from = { offset: 0, seq: 0 }, maxLineBytes = 1 << 20): RawLine[] {
  const buf = Buffer.from(text);
  const out: RawLine[] = [];
  let start = from.offset;
  let seq = from.seq;
  for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
    const whole = buf.subarray(start, nl);
    out.push({
      source: "src",
      file: `/logs/${fileId}.log`,
      fileId,
      offset: start,
      end: nl + 1,
      seq: seq++,
      bytes: whole.subarray(0, Math.min(whole.length, maxLineBytes)),
      size: whole.length,
    });
    start = nl + 1;
  }
  return out;
}

const JAVA = [
  "2026-11-20 20:30:12.857 ERROR [exec-71] com.live.pay.WalletController [] - failed",
  "java.lang.IllegalStateException: Connection pool exhausted (max 64)",
  "\tat com.live.pay.service.PayService.handle(Service.java:219)",
  "\tat java.base/java.lang.Thread.run(Thread.java:840)",
  "2026-11-20 20:30:12.881 INFO  [exec-192] com.live.pay.WalletController [] - handled",
  "2026-11-20 20:30:12.900 WARN  [exec-3] com.live.pay.WalletController [] - slow",
  "Caused by: java.net.SocketTimeoutException: Read timed out",
  "\t... 12 more",
  "2026-11-20 20:30:13.000 INFO  [exec-4] com.live.pay.WalletController [] - last",
].join("\n");
const JAVA_TEXT = `${JAVA}\n`;

function run(merger: MultilineMerger, input: RawLine[], now = 0): RawLine[] {
  const out: RawLine[] = [];
  for (const l of input) merger.push(l, out, now);
  return out;
}

function view(e: RawLine) {
  return { offset: e.offset, end: e.end, seq: e.seq, text: e.bytes.toString(), size: e.size };
}

describe("MultilineMerger", () => {
  test("start mode: continuation lines join the event before them; events count their own seq", () => {
    const merger = new MultilineMerger({ start: TEXT_EVENT_START });
    const input = lines(JAVA_TEXT);
    const out = run(merger, input);
    // The last event waits: its next line may still come.
    assert.equal(out.length, 3);
    assert.equal(merger.pendingEvents(), 1);
    merger.close("f", out);
    const ends = input.map((l) => l.end);
    const rows = JAVA.split("\n");
    assert.deepEqual(out.map(view), [
      { offset: 0, end: ends[3], seq: 0, text: rows.slice(0, 4).join("\n"), size: rows.slice(0, 4).join("\n").length },
      { offset: input[4]?.offset, end: ends[4], seq: 1, text: rows[4], size: rows[4]?.length },
      {
        offset: input[5]?.offset,
        end: ends[7],
        seq: 2,
        text: rows.slice(5, 8).join("\n"),
        size: rows.slice(5, 8).join("\n").length,
      },
      { offset: input[8]?.offset, end: ends[8], seq: 3, text: rows[8], size: rows[8]?.length },
    ]);
    assert.equal(merger.pendingEvents(), 0);
  });

  test("continue mode: lines matching `continue` join the previous event", () => {
    const merger = new MultilineMerger({ continue: String.raw`^(\s|Caused by:|[\w.$]+(Exception|Error):)` });
    const out = run(merger, lines(JAVA_TEXT));
    merger.close("f", out);
    assert.deepEqual(
      out.map((e) => e.bytes.toString().split("\n").length),
      [4, 1, 3, 1],
    );
  });

  test("a line that continues nothing (the file starts mid-event) is an event of its own", () => {
    const merger = new MultilineMerger({ start: TEXT_EVENT_START });
    const out = run(merger, lines("\tat a.B.c(B.java:1)\n\tat d.E.f(E.java:2)\n2026-11-20 20:30:12.857 INFO x\n"));
    assert.deepEqual(
      out.map((e) => e.bytes.toString()),
      ["\tat a.B.c(B.java:1)\n\tat d.E.f(E.java:2)"],
    );
  });

  test("files are merged apart: interleaved lines of two files do not mix", () => {
    const merger = new MultilineMerger({ start: TEXT_EVENT_START });
    const a = lines(JAVA_TEXT, "a");
    const b = lines(JAVA_TEXT, "b");
    const out: RawLine[] = [];
    for (let i = 0; i < a.length; i++) {
      merger.push(a[i] as RawLine, out, 0);
      merger.push(b[i] as RawLine, out, 0);
    }
    merger.close("a", out);
    merger.close("b", out);
    const byFile = (id: string) => out.filter((e) => e.fileId === id).map((e) => e.bytes.toString());
    assert.deepEqual(byFile("a"), byFile("b"));
    assert.equal(byFile("a").length, 4);
  });

  test("flush emits an event whose next line has not come within flushMs, and only then", () => {
    const merger = new MultilineMerger({ start: TEXT_EVENT_START, flushMs: 500 });
    const input = lines(JAVA_TEXT).slice(0, 4);
    const out = run(merger, input, 10_000);
    assert.equal(out.length, 0);
    assert.equal(merger.nextFlushAt(), 10_500);
    merger.flush(10_499, out);
    assert.equal(out.length, 0, "not yet quiet for flushMs");
    merger.flush(10_500, out, () => false);
    assert.equal(out.length, 0, "a file the source has not read to its end is not flushed");
    merger.flush(10_500, out, (id) => id === "f");
    assert.equal(out.length, 1);
    assert.equal(out[0]?.end, input[3]?.end);
    assert.equal(merger.nextFlushAt(), undefined);
    // A late continuation line starts an event of its own; seqs go on.
    const late = lines(`${JAVA_TEXT}\tat late.Frame(F.java:1)\n`).at(-1) as RawLine;
    merger.push(late, out, 20_000);
    merger.flush(20_500, out);
    assert.deepEqual(
      out.map((e) => e.seq),
      [0, 1],
    );
    assert.equal(out[1]?.bytes.toString(), "\tat late.Frame(F.java:1)");
  });

  test("maxLines: the lines beyond are consumed but dropped, and a note says how many", () => {
    const merger = new MultilineMerger({ start: TEXT_EVENT_START, maxLines: 3 });
    const frames = Array.from({ length: 10 }, (_, i) => `\tat frame${i}(F.java:${i})`);
    const text = `2026-11-20 20:30:12.857 ERROR [x] y [] - boom\njava.lang.Error: e\n${frames.join("\n")}\n2026-11-20 20:30:13.000 INFO [x] y [] - next\n`;
    const input = lines(text);
    const out = run(merger, input);
    assert.equal(out.length, 1);
    const e = out[0] as RawLine;
    assert.equal(e.end, input[11]?.end, "the event ends after its last line, dropped or not");
    const kept = e.bytes.toString().split("\n");
    assert.deepEqual(kept.slice(0, 3), [
      "2026-11-20 20:30:12.857 ERROR [x] y [] - boom",
      "java.lang.Error: e",
      "\tat frame0(F.java:0)",
    ]);
    assert.match(kept[3] as string, /^\t\.\.\. 9 more lines \(\d+ bytes\) dropped by weir ship/);
    assert.equal(e.size, e.bytes.length, "shipped as it is, not oversized");
    assert.equal(merger.truncatedEvents, 1);
  });

  test("maxBytes: an event stops growing at maxBytes", () => {
    const merger = new MultilineMerger({ start: "^START", maxBytes: 2048 });
    const body = Array.from({ length: 40 }, () => ` ${"x".repeat(99)}`);
    const out = run(merger, lines(`START\n${body.join("\n")}\nSTART\n`));
    const e = out[0] as RawLine;
    assert.ok(e.bytes.length <= 2048, `${e.bytes.length} bytes`);
    assert.match(e.bytes.toString(), /more lines \(\d+ bytes\) dropped/);
    assert.equal(e.size, e.bytes.length);
  });

  test("a line the source cut makes the merged event oversized (size > bytes)", () => {
    const merger = new MultilineMerger({ start: TEXT_EVENT_START });
    const text = `2026-11-20 20:30:12.857 ERROR [x] y [] - boom\n\tat ${"x".repeat(500)}\n2026-11-20 20:30:13.000 INFO [x] y [] - next\n`;
    const out = run(merger, lines(text, "f", { offset: 0, seq: 0 }, 100));
    const e = out[0] as RawLine;
    assert.ok(e.size > e.bytes.length);
    assert.equal(e.size, Buffer.byteLength(text.split("\n").slice(0, 2).join("\n")));
  });

  test("pending lines are copied: the source may reuse its read buffer", () => {
    const merger = new MultilineMerger({ start: TEXT_EVENT_START });
    const input = lines(JAVA_TEXT);
    const out: RawLine[] = [];
    for (const l of input.slice(0, 4)) {
      merger.push(l, out, 0);
      l.bytes.fill(0x21); // the source's buffer, overwritten by its next read
    }
    merger.close("f", out);
    assert.equal(out[0]?.bytes.toString(), JAVA.split("\n").slice(0, 4).join("\n"));
  });

  test("positions are resumable: a restart from any checkpoint yields the same events, none lost or doubled", () => {
    const text = JAVA_TEXT.repeat(5);
    const reference = (() => {
      const m = new MultilineMerger({ start: TEXT_EVENT_START });
      const out = run(m, lines(text));
      m.close("f", out);
      return out.map(view);
    })();
    const total = lines(text).length;
    for (let crashAfter = 1; crashAfter < total; crashAfter += 3) {
      // First run: the agent delivers what the merger emits and checkpoints each event's end and seq + 1.
      let merger = new MultilineMerger({ start: TEXT_EVENT_START });
      const delivered: RawLine[] = [];
      let checkpoint = { offset: 0, seq: 0 };
      for (const l of lines(text).slice(0, crashAfter)) {
        const out: RawLine[] = [];
        merger.push(l, out, 0);
        for (const e of out) {
          delivered.push(e);
          checkpoint = { offset: e.end, seq: e.seq + 1 };
        }
      }
      // Crash: the pending event is lost with the process. The tail resumes at the checkpoint.
      merger = new MultilineMerger({ start: TEXT_EVENT_START });
      const rest = run(merger, lines(text, "f", checkpoint));
      merger.close("f", rest);
      assert.deepEqual([...delivered, ...rest].map(view), reference, `crash after line ${crashAfter}`);
    }
  });

  test("config: one of start or continue, valid regexes", () => {
    assert.throws(() => new MultilineMerger({}), /set one of start .* or continue/);
    assert.throws(() => new MultilineMerger({ start: "^a", continue: "^b" }), /set one of start/);
    assert.throws(() => new MultilineMerger({ start: "([" }), /start: not a valid regular expression/);
    assert.throws(() => new MultilineMerger({ start: "^a", maxLines: 1 }), /maxLines/);
  });
});

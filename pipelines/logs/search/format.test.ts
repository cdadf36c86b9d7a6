import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bar,
  bucketLabel,
  callDepths,
  colours,
  cut,
  formatContext,
  formatHistogram,
  formatHits,
  formatLevel,
  formatTime,
  formatTrace,
  type LineFormat,
  oneLine,
} from "./format.ts";
import type { LogHit } from "./hit.ts";

const T = Date.UTC(2026, 10, 20, 12, 30, 1, 250);
const plain: LineFormat = { utc: true, colours: colours(false) };

function hit(over: Partial<LogHit>): LogHit {
  return {
    id: "f1-100:0",
    index: "logs-gift-svc-2026.11.20",
    ts: T,
    time: new Date(T).toISOString(),
    service: "gift-svc",
    host: "h",
    level: "INFO",
    dataset: "app",
    message: "m",
    ...over,
  };
}

test("times in UTC or local time, with or without the date", () => {
  assert.equal(formatTime(T, true), "2026-11-20 12:30:01.250");
  assert.equal(formatTime(T, true, false), "12:30:01.250");
  const local = new Date(T);
  assert.equal(formatTime(T, false).slice(11, 13), String(local.getHours()).padStart(2, "0"));
});

test("search hits: aligned columns, message on one line cut to the width, the id at the end", () => {
  const hits = [
    hit({ level: "ERROR", message: "send failed:\n  at handler (x.ts:1)", id: "aaaa-1:10" }),
    hit({ service: "pay-svc", ts: T + 5, message: "ok", id: "bbbb-1:20" }),
  ];
  assert.deepEqual(formatHits(hits, plain), [
    "2026-11-20 12:30:01.250  ERROR  gift-svc  send failed: ⏎ at handler (x.ts:1)  aaaa-1:10",
    "2026-11-20 12:30:01.255  INFO   pay-svc   ok  bbbb-1:20",
  ]);
  const narrow = formatHits([hit({ message: "x".repeat(200), id: "id-1:0" })], { ...plain, width: 80 });
  assert.equal(narrow[0]?.length, 80);
  assert.ok(narrow[0]?.endsWith("x…  id-1:0"));
  // Too narrow for the columns: the message is left whole (the terminal wraps it) rather than cut to nothing.
  assert.ok(
    (formatHits([hit({ message: "y".repeat(50) })], { ...plain, width: 30 })[0] ?? "").includes("y".repeat(50)),
  );
});

test("levels are coloured by how bad they are, and not at all without colours", () => {
  const c = colours(true);
  assert.equal(formatLevel("ERROR", c), "\u001b[31m\u001b[1mERROR\u001b[22m\u001b[39m");
  assert.equal(formatLevel("WARN", c), "\u001b[33mWARN \u001b[39m");
  assert.equal(formatLevel("DEBUG", colours(false)), "DEBUG");
  const coloured =
    formatHits([hit({ level: "ERROR", message: "z".repeat(100) })], { utc: true, width: 80, colours: c })[0] ?? "";
  // ANSI escapes take no room: what shows is still 80 wide.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it removes
  assert.equal(coloured.replace(/\u001b\[[0-9;]*m/g, "").length, 80);
});

test("cut and oneLine", () => {
  assert.equal(cut("abcdef", 4), "abc…");
  assert.equal(cut("abc", 4), "abc");
  assert.equal(cut("电话号码很长", 3), "电话…");
  assert.equal(oneLine("a\r\n\tb\tc"), "a ⏎ b c");
});

test("a trace: summary, time since start, services indented by call depth, access lines as request and status", () => {
  const lines = [
    hit({
      service: "gateway",
      dataset: "access",
      method: "POST",
      endpoint: "/gift/send",
      status: 502,
      latencyMs: 35,
      id: "g:0",
      message: "",
    }),
    hit({
      service: "gift-svc",
      ts: T + 3,
      dataset: "access",
      caller: "gateway",
      method: "POST",
      endpoint: "/gift/send",
      status: 502,
      latencyMs: 30,
      id: "a:0",
      message: "",
    }),
    hit({
      service: "pay-svc",
      ts: T + 4,
      dataset: "access",
      caller: "gift-svc",
      method: "POST",
      endpoint: "/pay/debit",
      status: 500,
      latencyMs: 12.5,
      id: "p:0",
      message: "",
    }),
    hit({
      service: "pay-svc",
      ts: T + 16,
      level: "ERROR",
      message: "debit failed",
      error: { type: "TimeoutError" },
      id: "p:1",
    }),
  ];
  assert.deepEqual(
    [...callDepths(lines)],
    [
      ["gateway", 0],
      ["gift-svc", 1],
      ["pay-svc", 2],
    ],
  );
  const out = formatTrace(
    { traceId: "t1", from: 0, to: 1, lines, services: ["gateway", "gift-svc", "pay-svc"], truncated: false },
    plain,
  );
  assert.deepEqual(out, [
    "trace t1  4 lines, 3 services, 16 ms from 2026-11-20 12:30:01.250 UTC  1 error",
    "   +0.0 ms  12:30:01.250  gateway      INFO   POST /gift/send 502 35 ms  g:0",
    "   +3.0 ms  12:30:01.253    gift-svc   INFO   POST /gift/send 502 30 ms  a:0",
    "   +4.0 ms  12:30:01.254      pay-svc  INFO   POST /pay/debit 500 13 ms  p:0",
    "    +16 ms  12:30:01.266      pay-svc  ERROR  debit failed TimeoutError  p:1",
  ]);
  assert.deepEqual(formatTrace({ traceId: "t", from: 0, to: 1, lines: [], services: [], truncated: false }, plain), []);
});

test("context: the file, seq numbers, the hit marked", () => {
  const src = (seq: number) => ({ fileId: "f1", seq, path: "/var/log/gift-svc/app.log" });
  const lines = [8, 9, 10].map((seq) => hit({ id: `f1:${seq}`, source: src(seq), message: `line ${seq}` }));
  const out = formatContext({ hit: lines[1] as LogHit, lines }, plain);
  assert.deepEqual(out, [
    "gift-svc /var/log/gift-svc/app.log",
    "   8  2026-11-20 12:30:01.250  INFO   line 8",
    ">  9  2026-11-20 12:30:01.250  INFO   line 9",
    "  10  2026-11-20 12:30:01.250  INFO   line 10",
  ]);
});

test("histogram bars: eighths of a cell, labels as precise as the interval", () => {
  assert.equal(bar(0, 10, 10), "");
  assert.equal(bar(10, 10, 10), "██████████");
  assert.equal(bar(5, 10, 10), "█████");
  assert.equal(bar(8, 80, 10), "█");
  assert.equal(bar(1, 80, 10), "▏");
  assert.equal(bar(1, 800, 10), "▏"); // a line is never invisible
  assert.equal(bucketLabel(T - 1250, 60_000, true), "2026-11-20 12:30");
  assert.equal(bucketLabel(T - 1250, 1000, true), "2026-11-20 12:30:00");
  assert.equal(bucketLabel(T, 86_400_000, true), "2026-11-20");
  const out = formatHistogram(
    {
      store: "elasticsearch",
      from: 0,
      to: 0,
      intervalMs: 60_000,
      total: 1205,
      buckets: [
        { start: Date.UTC(2026, 10, 20, 12, 0), count: 1200 },
        { start: Date.UTC(2026, 10, 20, 12, 1), count: 0 },
        { start: Date.UTC(2026, 10, 20, 12, 2), count: 5 },
      ],
    },
    { ...plain, width: 40 },
  );
  assert.deepEqual(out, [
    `2026-11-20 12:00  1,200  ${"█".repeat(15)}`,
    "2026-11-20 12:01      0  ",
    "2026-11-20 12:02      5  ▏",
  ]);
});

// Benchmark: the shipper's hot path per line, parse + map + Avro encode + key (shipper/formats'
// LineDecoder), per format, on the simulator's files. The target: 25 MiB/s per core of ~300-byte
// JSON lines is about 90k lines/s with everything else, so at most 4 µs per access-log line here.
// Lines are read into memory first (as the tail would hand them over), so only the decoder is timed;
// the text log is timed with its multiline merger (the way the agent runs it) and without. combined
// lines are made from the access logs' records (the simulator writes no combined log).
//   node --import tsx bench/shipper/formats.ts [--dir /tmp/fmt-sim] [--seconds 2] [--runs 3] [--dirty 0] [--only AccessLog] [--rounds 30]
// Without --dir it simulates 20 s of traffic into a temp dir first. Run it pinned for one core's figures:
//   taskset -c 0 node --import tsx bench/shipper/formats.ts
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog } from "../../schemas/types.generated.ts";
import {
  createLineDecoder,
  type LineDecoderConfigInput,
  MultilineMerger,
  TEXT_EVENT_START,
} from "../../shipper/formats/index.ts";
import type { RawLine, ShipEntry } from "../../shipper/types.ts";
import { median } from "../support/process.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] as string) : dflt;
};
const SECONDS = Number(arg("seconds", "2"));
/** Only the formats whose row name contains this (e.g. --only AccessLog); the floors always run. */
const ONLY = arg("only", "");
const RUNS = Number(arg("runs", "3"));
const MiB = 1024 * 1024;

let dir = arg("dir", "");
let tempDir: string | null = null;
if (dir === "") {
  tempDir = mkdtempSync(join(tmpdir(), "weir-bench-formats-"));
  dir = join(tempDir, "sim");
  await simulate({ ...SIMULATE_DEFAULTS, seed: 1, durationMs: 20_000, dirty: Number(arg("dirty", "0")), out: dir });
}

/** A stream's lines, rotated files first, as RawLines over one buffer. */
function streamLines(name: string): RawLine[] {
  const base = join(dir, `${name}.log`);
  const parts: Buffer[] = [];
  let n = 1;
  while (existsSync(`${base}.${n}`)) n++;
  for (let i = n - 1; i >= 1; i--) parts.push(readFileSync(`${base}.${i}`));
  parts.push(readFileSync(base));
  return split(Buffer.concat(parts), name);
}

function split(buf: Buffer, name: string): RawLine[] {
  const lines: RawLine[] = [];
  let start = 0;
  for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
    const bytes = buf.subarray(start, nl);
    lines.push({
      source: "bench",
      file: `/var/log/${name}.log`,
      fileId: name,
      offset: start,
      end: nl + 1,
      seq: lines.length,
      bytes: bytes.subarray(0, Math.min(bytes.length, 1 << 20)),
      size: bytes.length,
    });
    start = nl + 1;
  }
  return lines;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
function combinedLine(a: AccessLog): string {
  const d = new Date(a.ts);
  const pad = (x: number) => String(x).padStart(2, "0");
  const t = `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
  const path = a.endpoint.replace("{id}", String(a.roomId ?? 1));
  return `${a.clientIp} - - [${t}] "${a.method} ${path}?src=feed HTTP/1.1" ${a.status} ${a.bytesOut} "-" "${a.userAgent ?? "-"}" ${(a.latencyUs / 1e6).toFixed(3)}`;
}

interface Case {
  name: string;
  lines: RawLine[];
  config: LineDecoderConfigInput;
  multiline?: boolean;
}

const accessLines = streamLines("room-svc/access");
const combined = split(
  Buffer.from(
    `${accessLines
      .map((l) => {
        try {
          return combinedLine(JSON.parse(l.bytes.toString()) as AccessLog);
        } catch {
          return null;
        }
      })
      .filter((x) => x !== null)
      .join("\n")}\n`,
  ),
  "nginx/room-svc",
);
const payText = streamLines("pay-svc/app");
const service = { pathTemplate: "/var/log/{service}/*.log" };
const cases: Case[] = [
  { name: "json AccessLog (room-svc/access)", lines: accessLines, config: { topic: "logs.access" } },
  { name: "json CoinTxn (gift-svc/coin)", lines: streamLines("gift-svc/coin"), config: { topic: "events.coin" } },
  {
    name: "json BehaviorEvent (room-svc/behavior)",
    lines: streamLines("room-svc/behavior"),
    config: { topic: "events.behavior" },
  },
  {
    name: "json DeviceReport (device-svc/device)",
    lines: streamLines("device-svc/device"),
    config: { topic: "events.device" },
  },
  { name: "json AppLog (im-svc/app)", lines: streamLines("im-svc/app"), config: { topic: "logs.app" } },
  {
    name: "pino AppLog (room-svc/app)",
    lines: streamLines("room-svc/app"),
    config: { format: "pino", topic: "logs.app" },
  },
  {
    name: "logback AppLog (user-svc/app)",
    lines: streamLines("user-svc/app"),
    config: { format: "logback", topic: "logs.app", ...service },
  },
  {
    name: "text AppLog + multiline (pay-svc/app)",
    lines: payText,
    config: { format: { type: "text", timezone: "Asia/Shanghai" }, topic: "logs.app", ...service },
    multiline: true,
  },
  {
    name: "raw AppLog (pay-svc/app lines)",
    lines: payText,
    config: { format: "raw", topic: "logs.app", ...service },
  },
  {
    name: "combined AccessLog (from room-svc/access)",
    lines: combined,
    config: {
      format: { type: "combined", endpoints: ["/room/{id}/enter", "/room/{id}/leave", "/room/{id}/info"] },
      topic: "logs.access",
      pathTemplate: "/var/log/nginx/{service}.log",
      fields: { app: "live", system: "room" },
    },
  },
];

const catalog = loadTopicCatalog();

/** Lines per second over SECONDS of repeated passes (after a warm-up pass); bytes/s of the input. */
function measure(c: Case): { linesPerSec: number; mibPerSec: number; usPerLine: number; deadLetters: number } {
  const decoder = createLineDecoder(c.config, { catalog, host: "bench" });
  const bytes = c.lines.reduce((s, l) => s + l.size + 1, 0);
  const out: ShipEntry[] = [];
  const merged: RawLine[] = [];
  const pass = () => {
    let input = c.lines;
    if (c.multiline) {
      const merger = new MultilineMerger({ start: TEXT_EVENT_START });
      merged.length = 0;
      for (const l of c.lines) merger.push(l, merged, 0);
      merger.close(c.lines[0]?.fileId ?? "", merged);
      input = merged;
    }
    for (const l of input) {
      decoder.decode(l, out);
      if (out.length >= 1000) out.length = 0;
    }
    out.length = 0;
  };
  pass();
  const deadLetters = Object.values(decoder.counts.deadLetters).reduce((a, b) => a + b, 0);
  let passes = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < SECONDS * 1e9) {
    pass();
    passes++;
    elapsed = Number(process.hrtime.bigint() - t0);
  }
  const secs = elapsed / 1e9;
  const lines = passes * c.lines.length;
  return {
    linesPerSec: lines / secs,
    mibPerSec: (passes * bytes) / MiB / secs,
    usPerLine: (secs * 1e6) / lines,
    deadLetters,
  };
}

console.log(`# shipper formats: decode (parse + map + encode + key) per line, one thread`);
console.log(
  `node ${process.version}, ${cpus()[0]?.model ?? "?"}, median of ${RUNS} runs of ${SECONDS} s, files from ${dir}\n`,
);
console.log("| format (stream) | lines | avg bytes | lines/s | MiB/s | µs/line | dead letters |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const c of cases.filter((x) => x.name.includes(ONLY))) {
  const runs = Array.from({ length: RUNS }, () => measure(c));
  const lps = median(runs.map((r) => r.linesPerSec));
  const mib = median(runs.map((r) => r.mibPerSec));
  const avg = c.lines.reduce((s, l) => s + l.size, 0) / c.lines.length;
  console.log(
    `| ${c.name} | ${c.lines.length} | ${avg.toFixed(0)} | ${Math.round(lps).toLocaleString("en-US")} | ${mib.toFixed(1)} | ${(1e6 / lps).toFixed(2)} | ${runs[0]?.deadLetters} |`,
  );
}

// The floor under the json rows, measured in the same conditions (a loaded machine slows both alike).
const accessCodec = codecFor("AccessLog");
const records = accessLines.flatMap((l) => {
  try {
    // As the decoder has them: the parsed object with its source set (a spread copy would be a slower object).
    const r = JSON.parse(l.bytes.toString()) as AccessLog;
    r.source = { file: l.file, fileId: l.fileId, offset: l.offset, seq: l.seq };
    return Number.isSafeInteger(r.ts) ? [r] : [];
  } catch {
    return [];
  }
});
// On a shared machine the load drifts between rows; interleaving the three passes over the same lines
// makes the decoder's cost over its floor (JSON.parse + Avro encode) a stable ratio.
const accessDecoder = createLineDecoder({ topic: "logs.access" }, { catalog, host: "bench" });
const sink: ShipEntry[] = [];
const passes: Record<string, () => void> = {
  "toString + JSON.parse": () => {
    for (const l of accessLines) {
      try {
        JSON.parse(l.bytes.toString("utf8"));
      } catch {}
    }
  },
  "Avro encode": () => {
    for (const r of records) accessCodec.encode(r);
  },
  "decode (LineDecoder)": () => {
    for (const l of accessLines) {
      accessDecoder.decode(l, sink);
      if (sink.length >= 1000) sink.length = 0;
    }
  },
};
const spent: Record<string, number> = {};
for (const [k, pass] of Object.entries(passes)) {
  pass();
  spent[k] = 0;
}
const rounds = Number(arg("rounds", "30"));
for (let r = 0; r < rounds; r++) {
  for (const [k, pass] of Object.entries(passes)) {
    const t0 = process.hrtime.bigint();
    pass();
    spent[k] = (spent[k] as number) + Number(process.hrtime.bigint() - t0);
  }
}
const us = (k: string) => (spent[k] as number) / rounds / accessLines.length / 1000;
console.log(`\nroom-svc/access, ${rounds} interleaved rounds of ${accessLines.length} lines:`);
for (const k of Object.keys(passes)) console.log(`  ${k.padEnd(24)} ${us(k).toFixed(2)} µs/line`);
const floorUs = us("toString + JSON.parse") + us("Avro encode");
console.log(`  decode / (parse + encode) = ${(us("decode (LineDecoder)") / floorUs).toFixed(2)}`);
if (tempDir !== null) rmSync(tempDir, { recursive: true, force: true });

// How long PII masking takes per log line: `node --import tsx bench/logs/pii-mask.ts [records]`.
//
// The lines are the traffic simulator's app logs (messages, attributes, error stacks of seven
// services), as they are, and with PII written into them the ways the simulator types it (chat spam,
// registrations) plus emails, ID and card numbers. Reported: nanoseconds per line for maskText, per
// record for the compiled AppLog masker, and, for scale, one pass of a regular expression that only
// looks for a digit or an @ and of a naive masker made of one regular expression per kind.

import type { EventWriter, RecordTypes, SimStream, StreamSummary } from "../../infra/simulator/event-writer.ts";
import { TrafficGenerator } from "../../infra/simulator/generator.ts";
import { GroundTruth } from "../../infra/simulator/ground-truth.ts";
import { legitPhone, spamMessage } from "../../infra/simulator/population.ts";
import { Rng } from "../../infra/simulator/random.ts";
import { loadScenario } from "../../infra/simulator/scenario.ts";
import { PiiKey } from "../../pipelines/logs/pii/key.ts";
import { compileMasker, PiiMasker, type RecordSchema } from "../../pipelines/logs/pii/masker.ts";
import { SchemaRegistry } from "../../schemas/registry.ts";
import type { AppLog } from "../../schemas/types.generated.ts";

const RECORDS = Number(process.argv[2] ?? 50_000);
const ROUNDS = 7;

class AppLogCapture implements EventWriter {
  readonly records: AppLog[] = [];
  written = 0;
  stream<K extends keyof RecordTypes>(_service: string, kind: K): SimStream<RecordTypes[K]> {
    return {
      write: (record) => {
        this.written++;
        if (kind === "app" && this.records.length < RECORDS) this.records.push(record as AppLog);
      },
    };
  }
  async flush(): Promise<void> {}
  async close(): Promise<StreamSummary[]> {
    return [];
  }
}

function simulatedAppLogs(): AppLog[] {
  const sink = new AppLogCapture();
  const start = Date.UTC(2026, 10, 20, 12, 30);
  const gen = new TrafficGenerator(
    {
      seed: 1,
      start,
      runMs: 3_600_000,
      rate: 4000,
      diurnal: false,
      users: 20_000,
      streamers: 500,
      scenario: loadScenario("default"),
      scenarioName: "default",
      fraud: 1,
    },
    sink,
    new GroundTruth(undefined),
  );
  while (sink.records.length < RECORDS && gen.runUntil(gen.now + 10_000, Number.POSITIVE_INFINITY));
  gen.finish();
  return sink.records.slice(0, RECORDS);
}

/** The same lines with one or two PII values each, typed the ways users and services type them. */
function withPii(records: AppLog[]): AppLog[] {
  const rng = new Rng(2);
  const extras = [
    () => `register ok phone=${legitPhone(rng)}`,
    () => `chat blocked: ${spamMessage(rng)}`,
    () => `password reset mail sent to user${rng.int(100000)}@example.com`,
    () => "kyc verified idCard=11010519491231002X",
    () => "recharge card=6222 0212 3456 7890 128 declined",
  ];
  return records.map((r) => ({
    ...r,
    message: `${r.message} ${rng.pick(extras)()}`,
    attributes: rng.chance(0.3) ? { ...r.attributes, phone: legitPhone(rng) } : { ...r.attributes },
    error: r.error ? { ...r.error } : null,
  }));
}

/** Strings as a Kafka consumer has them: decoded from bytes (flat), not the simulator's concatenations. */
function decoded(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}

function asDecoded(records: AppLog[]): AppLog[] {
  return records.map((r) => ({
    ...r,
    message: decoded(r.message),
    attributes: Object.fromEntries(Object.entries(r.attributes).map(([k, v]) => [decoded(k), decoded(v)])),
    error: r.error
      ? {
          type: decoded(r.error.type),
          message: decoded(r.error.message),
          stack: r.error.stack && decoded(r.error.stack),
        }
      : null,
  }));
}

function cloneAll(records: AppLog[]): AppLog[] {
  return records.map((r) => ({ ...r, attributes: { ...r.attributes }, error: r.error ? { ...r.error } : null }));
}

/** Nanoseconds per item of `run` over `n` items: the median round (the best one in brackets). */
function measure(n: number, prepare: () => void, run: () => number): [number, number] {
  const samples: number[] = [];
  let sink = 0;
  for (let round = 0; round < ROUNDS + 2; round++) {
    prepare();
    const t0 = process.hrtime.bigint();
    sink += run();
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (round >= 2) samples.push(ns); // two warm-up rounds
  }
  if (sink === -1) console.log(sink);
  samples.sort((a, b) => a - b);
  return [samples[Math.floor(samples.length / 2)] as number, samples[0] as number];
}

// A masker as one would first write it: a regular expression per kind, replace() after replace().
const NAIVE = [
  /(?<![\dA-Za-z])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![\dA-Za-z])/g,
  /(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])/g,
  /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g,
  /(?<![\dA-Za-z])\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?(?![\dA-Za-z])/g,
];
function naiveMask(s: string): string {
  let out = s;
  for (const re of NAIVE) out = out.replace(re, "[pii]");
  return out;
}

const registry = SchemaRegistry.load();
const masker = new PiiMasker({}, new PiiKey("bench-key-0123456789abcdef0123456789abcdef", "given"));
const maskAppLog = compileMasker<AppLog>(registry.current("AppLog").schema as unknown as RecordSchema, masker);

const plain = asDecoded(simulatedAppLogs());
const pii = asDecoded(withPii(plain));
const plainLines = plain.map((r) => r.message);
const piiLines = pii.map((r) => r.message);
const avgLen = (lines: string[]) => Math.round(lines.reduce((n, l) => n + l.length, 0) / lines.length);

const rows: [string, [number, number]][] = [];
for (const [name, lines] of [
  ["simulator messages, as they are", plainLines],
  ["the same with PII", piiLines],
] as const) {
  let changed = 0;
  for (const l of lines) if (masker.maskText(l) !== l) changed++;
  console.log(`${name}: ${lines.length} lines, ${avgLen(lines)} chars on average, ${changed} with PII masked`);
  rows.push([
    `maskText: ${name}`,
    measure(
      lines.length,
      () => {},
      () => {
        let n = 0;
        for (const l of lines) n += masker.maskText(l).length;
        return n;
      },
    ),
  ]);
  rows.push([
    `  (for scale) /[0-9@]/.test: ${name}`,
    measure(
      lines.length,
      () => {},
      () => {
        let n = 0;
        for (const l of lines) if (/[0-9@]/.test(l)) n++;
        return n;
      },
    ),
  ]);
  rows.push([
    `  (for scale) naive regex masker: ${name}`,
    measure(
      lines.length,
      () => {},
      () => {
        let n = 0;
        for (const l of lines) n += naiveMask(l).length;
        return n;
      },
    ),
  ]);
}
for (const [name, records] of [
  ["AppLog records, as they are", plain],
  ["AppLog records with PII", pii],
] as const) {
  let batch: AppLog[] = [];
  rows.push([
    `compiled AppLog masker: ${name}`,
    measure(
      records.length,
      () => {
        batch = cloneAll(records);
      },
      () => {
        for (const r of batch) maskAppLog(r);
        return batch.length;
      },
    ),
  ]);
}

console.log(`\n${"what".padEnd(52)} ns per line/record (best)   lines/s per core`);
for (const [name, [median, best]] of rows) {
  const ns = `${median.toFixed(0)} (${best.toFixed(0)})`;
  const rate = Math.round(1e9 / median).toLocaleString("en");
  console.log(`${name.padEnd(52)} ${ns.padStart(25)}   ${rate.padStart(16)}`);
}
console.log(`\nmasked by kind: ${JSON.stringify(masker.counts)}; node ${process.version}`);

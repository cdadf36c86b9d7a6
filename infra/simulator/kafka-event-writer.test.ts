// The ids `weir simulate --to kafka` gives app lines: the logs pipeline stores a line under its id
// with a `create`, so two different lines sharing one id lose the second. No broker is needed: the
// writer's sends are caught where records are handed to Kafka (enqueue).
import assert from "node:assert/strict";
import { test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import type { AppLog } from "../../schemas/types.generated.ts";
import { TrafficGenerator } from "./generator.ts";
import { GroundTruth } from "./ground-truth.ts";
import { appLineId, KafkaEventWriter } from "./kafka-event-writer.ts";
import { Rng } from "./random.ts";
import { loadScenario } from "./scenario.ts";

const appCodec = codecFor("AppLog");

/** A KafkaEventWriter that keeps what it would produce to logs.app instead of sending it (it never connects). */
class CapturingKafkaEventWriter extends KafkaEventWriter {
  readonly app: Buffer[] = [];
  override enqueue(topic: string, _key: string | null, value: Buffer): void {
    if (topic === "logs.app") this.app.push(value);
  }
}

interface Run {
  start: number;
  seed?: number;
  rate?: number;
  runMs?: number;
}

/** The app lines of a short run as encoded for Kafka, by id. */
function appLines(run: Run): Map<string, Buffer> {
  const writer = new CapturingKafkaEventWriter(["127.0.0.1:1"], new GroundTruth(undefined), 0, new Rng(1));
  const runMs = run.runMs ?? 20_000;
  const gen = new TrafficGenerator(
    {
      seed: run.seed ?? 3,
      start: run.start,
      runMs,
      rate: run.rate ?? 600,
      diurnal: false,
      users: 3000,
      streamers: 60,
      scenario: loadScenario("default"),
      scenarioName: "default",
      fraud: 1,
    },
    writer,
    new GroundTruth(undefined),
  );
  gen.runUntil(run.start + runMs, Number.POSITIVE_INFINITY);
  gen.finish();
  const byId = new Map<string, Buffer>();
  for (const value of writer.app) {
    const id = appCodec.decode(value).id;
    assert.ok(!byId.has(id), `id ${id} twice in one run`);
    byId.set(id, value);
  }
  assert.ok(byId.size > 1000, `${byId.size} app lines`);
  return byId;
}

const START = Date.UTC(2026, 10, 20, 12, 30, 0);

test("two runs with different starts give their app lines disjoint ids", () => {
  const a = appLines({ start: START });
  const b = appLines({ start: START + 60_000 });
  const shared = [...a.keys()].filter((id) => b.has(id));
  assert.deepEqual(shared, []);
  // Before, ids were `<service>:<n>` in both runs, so most of the second run's lines had a first run's id.
  const numbered = (m: Map<string, Buffer>) => new Set([...m.keys()].map((id) => id.split(":").slice(0, 2).join(":")));
  const sa = numbered(a);
  assert.ok([...numbered(b)].filter((n) => sa.has(n)).length > 1000, "the runs number their lines alike");
});

test("the same seed and start give the same ids; an id never names two different lines across runs", () => {
  const a = appLines({ start: START });
  const again = appLines({ start: START });
  assert.deepEqual([...again.keys()], [...a.keys()]);
  // Other options over the same start and seed: the lines both runs wrote alike keep one id, the others differ.
  const runs = [a, appLines({ start: START, runMs: 30_000 }), appLines({ start: START, rate: 900 })];
  const seen = new Map<string, Buffer>();
  let sameLine = 0;
  for (const run of runs)
    for (const [id, value] of run) {
      const before = seen.get(id);
      if (before === undefined) seen.set(id, value);
      else {
        assert.ok(before.equals(value), `id ${id} names two different lines`);
        sameLine++;
      }
    }
  assert.ok(sameLine > 0, "a longer run begins with the same lines, under the same ids");
});

test("an app line's id changes with anything the line says", () => {
  const line: AppLog = {
    id: "",
    ts: START,
    service: "gift-svc",
    host: "gift-svc-1",
    level: "INFO",
    message: "handled POST /gift/send status=200 in 12 ms",
    logger: "gift.send",
    traceId: "0123456789abcdef0123456789abcdef",
    spanId: "0123456789abcdef",
    error: null,
    attributes: { reqId: "q-1", status: "200" },
    source: null,
  };
  const id = appLineId("gift-svc", 7, line);
  assert.match(id, /^gift-svc:7:[0-9a-z]+$/);
  assert.equal(appLineId("gift-svc", 7, { ...line }), id);
  const variants: Partial<AppLog>[] = [
    { ts: START + 1 },
    { ts: START + 2 ** 32 },
    { host: "gift-svc-2" },
    { level: "WARN" },
    { logger: null },
    { message: `${line.message}.` },
    { traceId: null, spanId: null },
    { error: { type: "TimeoutError", message: "timed out", stack: null } },
    { attributes: { reqId: "q-1", status: "500" } },
    { attributes: { reqI: "dq-1", status: "200" } },
  ];
  const ids = new Set([id]);
  for (const v of variants) ids.add(appLineId("gift-svc", 7, { ...line, ...v }));
  assert.equal(ids.size, variants.length + 1);
});

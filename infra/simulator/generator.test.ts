// Ids the generator makes (requests, coin transactions, traces) name their run: the access lines'
// store ids are built from request ids, and `weir logs trace` gathers lines by trace id, so a second
// run of the same seed must not reuse the first one's.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AccessLog, AppLog, CoinTxn } from "../../schemas/types.generated.ts";
import type { EventWriter, RecordTypes, SimStream, StreamSummary } from "./event-writer.ts";
import { TrafficGenerator } from "./generator.ts";
import { GroundTruth } from "./ground-truth.ts";
import { loadScenario } from "./scenario.ts";

interface Ids {
  requests: string[];
  txns: string[];
  traces: Set<string>;
}

class IdCapture implements EventWriter {
  readonly ids: Ids = { requests: [], txns: [], traces: new Set() };
  written = 0;
  stream<K extends keyof RecordTypes>(_service: string, kind: K): SimStream<RecordTypes[K]> {
    return {
      write: (r: RecordTypes[K]) => {
        if (kind === "access") {
          const a = r as AccessLog;
          this.ids.requests.push(`${a.service}/${a.id}`);
          if (a.traceId) this.ids.traces.add(a.traceId);
        } else if (kind === "app") {
          const t = (r as AppLog).traceId;
          if (t) this.ids.traces.add(t);
        } else if (kind === "coin") this.ids.txns.push((r as CoinTxn).id);
      },
    };
  }
  async flush(): Promise<void> {}
  async close(): Promise<StreamSummary[]> {
    return [];
  }
}

function run(seed: number, start: number): Ids {
  const writer = new IdCapture();
  const gen = new TrafficGenerator(
    {
      seed,
      start,
      runMs: 15_000,
      rate: 400,
      diurnal: false,
      users: 2000,
      streamers: 40,
      scenario: loadScenario("default"),
      scenarioName: "default",
      fraud: 1,
    },
    writer,
    new GroundTruth(undefined),
  );
  gen.runUntil(start + 15_000, Number.POSITIVE_INFINITY);
  gen.finish();
  return writer.ids;
}

const T0 = Date.UTC(2026, 10, 21, 10);

test("two runs of one seed at different starts share no request, transaction or trace id", () => {
  const a = run(7, T0);
  const b = run(7, T0 + 3_600_000);
  assert.ok(a.requests.length > 1000 && a.txns.length > 10 && a.traces.size > 500);
  const inA = new Set([...a.requests, ...a.txns]);
  assert.deepEqual(
    [...b.requests, ...b.txns].filter((id) => inA.has(id)),
    [],
  );
  assert.deepEqual(
    [...b.traces].filter((t) => a.traces.has(t)),
    [],
  );
  for (const t of b.traces) assert.match(t, /^[0-9a-f]{32}$/);
});

test("the same seed and start give the same ids", () => {
  const a = run(7, T0);
  const b = run(7, T0);
  assert.deepEqual(b.requests, a.requests);
  assert.deepEqual(b.txns, a.txns);
  assert.deepEqual([...b.traces], [...a.traces]);
});

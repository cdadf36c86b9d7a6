import assert from "node:assert/strict";
import { test } from "node:test";
import { testApp } from "../testing/fixtures.ts";
import { CollectingSink, TopologyTestDriver } from "../testing/test-driver.ts";
import { json, TopologyError } from "../types.ts";
import type { AbsenceResult } from "./absence.ts";

interface Act {
  ts: number;
  uid: string;
  type: "REGISTER" | "ROOM_ENTER" | "LIKE";
  room?: number;
}

const MIN = 60_000;

function app(options: { within?: number; grace?: number; outOfOrderness?: number; maxPending?: number } = {}) {
  const a = testApp();
  const sink = new CollectingSink<AbsenceResult>();
  a.stream<undefined, Act>("acts", { serde: json(), outOfOrderness: options.outOfOrderness ?? 0 })
    .absence(
      {
        starts: (v) => v.type === "REGISTER",
        capture: (v) => ({ uid: v.uid }),
        mayCancel: (v) => v.type === "ROOM_ENTER",
        captureCancel: (v) => ({ room: v.room ?? 0 }),
        // a room enter cancels, unless it is the lobby (room 0)
        cancels: (c) => (c as { room: number }).room !== 0,
      },
      {
        name: "register-then-nothing",
        within: options.within ?? 10 * MIN,
        grace: options.grace ?? 0,
        ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
      },
    )
    .to(sink);
  return { app: a, sink };
}

const act = (ts: number, uid: string, type: Act["type"], room?: number): Act => ({
  ts,
  uid,
  type,
  ...(room !== undefined ? { room } : {}),
});

const fmt = (r: { key: string | null; value: AbsenceResult; ts: number }) => `${r.key}@${r.ts}:from ${r.value.startTs}`;

test("an A without a B within T is emitted once event time has passed it, at A's time + T", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (v: Act) => d.pipe("acts", v, { key: v.uid });
  pipe(act(0, "u1", "REGISTER"));
  pipe(act(MIN, "u2", "REGISTER"));
  pipe(act(3 * MIN, "u2", "ROOM_ENTER", 7)); // u2 is active
  pipe(act(9 * MIN, "x", "LIKE"));
  assert.deepEqual(sink.records, [], "not before the time has passed");
  pipe(act(10 * MIN + 1, "x", "LIKE")); // watermark = 10 min
  assert.deepEqual(sink.records.map(fmt), [`u1@${10 * MIN}:from 0`]);
  pipe(act(30 * MIN, "x", "LIKE"));
  assert.equal(sink.records.length, 1, "once");
});

test("the cancelling test sees what was captured; a B after T does not cancel", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (v: Act) => d.pipe("acts", v, { key: v.uid });
  pipe(act(0, "u1", "REGISTER"));
  pipe(act(MIN, "u1", "ROOM_ENTER", 0)); // the lobby: does not cancel
  pipe(act(2 * MIN, "u2", "REGISTER"));
  pipe(act(13 * MIN, "u2", "ROOM_ENTER", 5)); // too late to cancel
  pipe(act(30 * MIN, "x", "LIKE"));
  assert.deepEqual(sink.records.map(fmt), [`u1@${10 * MIN}:from 0`, `u2@${12 * MIN}:from ${2 * MIN}`]);
});

test("a B processed before its A (out of order) still cancels it", () => {
  const { app: a, sink } = app({ outOfOrderness: 5 * MIN });
  const d = new TopologyTestDriver(a);
  const pipe = (v: Act) => d.pipe("acts", v, { key: v.uid });
  pipe(act(2 * MIN, "u1", "ROOM_ENTER", 3));
  pipe(act(MIN, "u1", "REGISTER"));
  pipe(act(60 * MIN, "x", "LIKE"));
  assert.deepEqual(sink.records, []);
});

test("waits for grace before deciding", () => {
  const { app: a, sink } = app({ grace: 2 * MIN });
  const d = new TopologyTestDriver(a);
  const pipe = (v: Act) => d.pipe("acts", v, { key: v.uid });
  pipe(act(0, "u1", "REGISTER"));
  pipe(act(11 * MIN, "x", "LIKE"));
  pipe(act(10 * MIN, "u1", "ROOM_ENTER", 4)); // within grace: cancels
  pipe(act(0, "u2", "REGISTER")); // late? no: 0 + 2 min > watermark 11 min is false -> late
  pipe(act(30 * MIN, "x", "LIKE"));
  assert.deepEqual(sink.records, []);
  assert.equal(d.deadLetters.length, 1, "the late REGISTER is dead-lettered");
});

test("crash after a checkpoint: pending As come back with their timers and fire once", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (v: Act) => d.pipe("acts", v, { key: v.uid });
  pipe(act(0, "u1", "REGISTER"));
  pipe(act(MIN, "u2", "REGISTER"));
  d.checkpoint();
  pipe(act(2 * MIN, "u2", "ROOM_ENTER", 1));
  d.crash();
  pipe(act(20 * MIN, "x", "LIKE"));
  assert.deepEqual(sink.records.map(fmt), [`u1@${10 * MIN}:from 0`]);
});

test("refuses a bad within or maxPending", () => {
  const s = testApp().stream<undefined, Act>("acts", { serde: json() });
  const spec = {
    starts: () => true,
    capture: () => null,
    mayCancel: () => false,
    captureCancel: () => null,
    cancels: () => false,
  };
  assert.throws(() => s.absence(spec, { name: "a", within: 0 }), TopologyError);
  assert.throws(() => s.absence(spec, { name: "b", within: "1m", maxPending: 5000 }), /maxPending/);
});

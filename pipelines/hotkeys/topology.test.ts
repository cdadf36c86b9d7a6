import assert from "node:assert/strict";
import { test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import type { AccessLog, CoinTxn, HotKeys } from "../../schemas/types.generated.ts";
import type { CoalescedDelta } from "../../stream/operators/coalesce.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { DEFAULT_HOTKEYS_CONFIG_FILE, loadHotKeysConfig, parseHotKeysConfig } from "./config.ts";
import { buildHotKeysApp, keyOf } from "./topology.ts";

const T0 = Date.UTC(2026, 10, 20, 12, 30, 0);

function access(ts: number, roomId: number | null, uid: number, endpoint = "/room/{id}/enter"): AccessLog {
  return { ...SAMPLES.AccessLog, ts, roomId, uid, endpoint, service: "room-svc" };
}

function gift(ts: number, streamer: number, amount: number, type: CoinTxn["type"] = "GIFT"): CoinTxn {
  return { ...SAMPLES.CoinTxn, ts, type, counterpartUid: streamer, amount };
}

test("the default configuration loads: four dimensions, two counters, 10 s and 1 min windows", () => {
  const c = loadHotKeysConfig(DEFAULT_HOTKEYS_CONFIG_FILE);
  assert.deepEqual(Object.keys(c.dimensions), ["room", "streamer", "uid", "endpoint"]);
  assert.deepEqual(c.windows, [10_000, 60_000]);
  assert.equal(c.dimensions.uid?.sketch?.width, 4096);
  assert.deepEqual(Object.keys(c.counters), ["gift-coins-per-streamer", "likes-per-room"]);
});

test("keyOf: numbers stay numbers, fields join with a space, missing or oversized keys count for nothing", () => {
  assert.equal(keyOf({ roomId: 7 }, "roomId"), 7);
  assert.equal(keyOf({ roomId: null }, "roomId"), null);
  assert.equal(keyOf({ a: { b: "x" } }, "a.b"), "x");
  assert.equal(keyOf({ service: "gift-svc", endpoint: "/gift/send" }, ["service", "endpoint"]), "gift-svc /gift/send");
  assert.equal(keyOf({ s: "x".repeat(300) }, "s"), null);
  assert.equal(keyOf({ o: { nested: 1 } }, "o"), null);
});

test("a window that is not a whole number of slides is refused, naming the field", () => {
  assert.throws(
    () => parseHotKeysConfig({ windows: [1500], dimensions: { room: { from: { "logs.access": "roomId" } } } }),
    /windows/,
  );
});

test("the topology: a hot room tops the room list of every slide; gifts are coalesced per streamer and second", () => {
  const config = parseHotKeysConfig({
    k: 3,
    windows: [2000, 5000],
    dimensions: {
      room: { from: { "logs.access": "roomId" } },
      streamer: { from: { "events.coin": "counterpartUid" }, where: { type: "GIFT" } },
      endpoint: { from: { "logs.access": ["service", "endpoint"] } },
    },
    counters: {
      gifts: {
        from: "events.coin",
        where: { type: "GIFT" },
        key: "counterpartUid",
        amount: "amount",
        prefix: "g:",
        grace: 0,
      },
    },
  });
  const sink = new CollectingSink<CoalescedDelta>();
  const app = buildHotKeysApp({ config, counterSink: () => sink });
  const d = new TopologyTestDriver(app, { partitions: 2 });
  let coins = 0;
  for (let i = 0; i < 200; i++) {
    const ts = T0 + i * 50;
    // Room 7 is hot: every other request; rooms 10..18 share the rest.
    d.pipe("logs.access", access(ts, i % 2 === 0 ? 7 : 10 + (i % 9), 100 + i), { partition: i % 2 });
    d.pipe("events.coin", gift(ts, 500 + (i % 3), 10), { partition: (i + 1) % 2 });
    d.pipe("events.coin", gift(ts, 999, 1_000, "RECHARGE"), { partition: 0 });
    coins += 10;
  }
  const codec = codecFor("HotKeys");
  const lists = d.output("hotkeys.top", (b) => codec.decode(b) as HotKeys).map((r) => r.value);
  const rooms = lists.filter((l) => l.dimension === "room" && l.windowMs === 2000 && l.windowStart >= T0 + 1000);
  assert.ok(rooms.length >= 5, `${rooms.length} room lists`);
  for (const l of rooms) {
    assert.equal(l.keys[0]?.key, "7");
    assert.equal(l.keys[0]?.count, 20, "20 of the 40 requests of a 2 s window");
    assert.equal(l.total, 40);
    assert.equal(l.keys.length, 3);
    assert.equal(l.keys[0]?.share, 0.5);
  }
  const streamers = lists.filter((l) => l.dimension === "streamer" && l.windowMs === 5000);
  assert.ok(streamers.length > 0);
  assert.ok(
    streamers.every((l) => l.keys.every((e) => e.key !== "999")),
    "recharges are not gifts",
  );
  assert.ok(lists.some((l) => l.dimension === "endpoint" && l.keys[0]?.key === "room-svc /room/{id}/enter"));
  // Counters: one delta per streamer per closed second; what is still open is the last second.
  const byStreamer = new Map<string, number>();
  for (const r of sink.records) byStreamer.set(r.value.key, (byStreamer.get(r.value.key) ?? 0) + r.value.delta);
  assert.deepEqual([...byStreamer.keys()].sort(), ["500", "501", "502"]);
  const written = [...byStreamer.values()].reduce((a, b) => a + b, 0);
  assert.ok(written >= coins - 20 * 10 && written <= coins, `${written} of ${coins}`);
  assert.ok(sink.records.length <= 3 * 10 + 3, `${sink.records.length} writes for 200 gifts`);
});

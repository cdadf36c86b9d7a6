import assert from "node:assert/strict";
import { test } from "node:test";
import { type AccessLog, accessAggregator, decodeAccs, encodeAccs, type NodeAcc, newSketch } from "./rows.ts";
import { SloConfig } from "./slo.ts";

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function node(endpoint: string, latencies: number[]): NodeAcc & { slowAboveUs: number } {
  const sketch = newSketch();
  for (const l of latencies) sketch.accept(l);
  return {
    level: "ENDPOINT",
    app: "live",
    system: "room",
    service: "room-svc",
    endpoint,
    requests: latencies.length,
    errors: 1,
    slow: 2,
    maxUs: Math.max(...latencies),
    sketch,
    slowAboveUs: 300_000,
  };
}

const QUANTILES = [0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1];

test("the binary form of accumulators gives back nodes whose sketches answer and merge exactly as the originals", () => {
  const r = rng(3);
  const accs = [0, 1, 2, 3].map((i) =>
    node(
      `/e${i}`,
      Array.from({ length: 1 + i * 40 }, () => Math.round(20_000 * Math.exp(1.5 * (r() - 0.5)))),
    ),
  );
  accs.push(node("/zero-and-huge", [0, 0, 1, 10_000_000_000]));
  const back = decodeAccs(encodeAccs(accs, accs.length));
  assert.equal(back.length, accs.length);
  for (const [i, a] of accs.entries()) {
    const b = back[i] as NodeAcc & { slowAboveUs: number };
    assert.deepEqual({ ...b, sketch: null }, { ...a, sketch: null });
    assert.equal(b.sketch.count, a.sketch.count);
    for (const q of QUANTILES) assert.equal(b.sketch.getValueAtQuantile(q), a.sketch.getValueAtQuantile(q), `q ${q}`);
    // Merged into a live sketch, a decoded one adds what the original adds.
    const x = newSketch();
    const y = newSketch();
    for (const v of [5_000, 70_000, 90_000]) {
      x.accept(v);
      y.accept(v);
    }
    x.merge(a.sketch);
    y.merge(b.sketch);
    for (const q of QUANTILES) assert.equal(y.getValueAtQuantile(q), x.getValueAtQuantile(q));
  }
});

test("a second of a service's endpoints is about ten times smaller than its JSON form, which is still read", () => {
  const r = rng(5);
  const agg = accessAggregator(
    SloConfig.parse("defaults: { availability: 99.9%, latency: { threshold: 100ms, target: 99% }, runbook: x }"),
  );
  let acc = agg.init();
  for (let i = 0; i < 300; i++) {
    const e = {
      service: "room-svc",
      app: "live",
      system: "room",
      endpoint: `/room/e${i % 6}`,
      status: r() < 0.01 ? 503 : 200,
      errorCode: null,
      latencyUs: Math.round(30_000 * Math.exp(r() - 0.5)),
    } as unknown as AccessLog;
    acc = agg.add(acc, e, 0);
  }
  const serde = agg.serde as NonNullable<typeof agg.serde>;
  const binary = serde.encode(acc);
  const nodes = [...acc.values()].flatMap((m) => [...m.values()]);
  const json = Buffer.from(
    JSON.stringify(nodes.map((a) => ({ ...a, sketch: Buffer.from(a.sketch.toProto()).toString("base64") }))),
  );
  assert.ok(binary.length * 8 < json.length, `${binary.length} bytes against ${json.length} as JSON`);
  const fromJson = serde.decode(json);
  const fromBinary = serde.decode(binary);
  for (const [service, endpoints] of fromBinary) {
    for (const [endpoint, a] of endpoints) {
      const b = fromJson.get(service)?.get(endpoint);
      assert.ok(b);
      assert.equal(a.requests, b.requests);
      for (const q of QUANTILES) assert.equal(a.sketch.getValueAtQuantile(q), b.sketch.getValueAtQuantile(q));
    }
  }
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { NO_SOURCE, type SourceSettings, WatermarkTracker } from "./watermark.ts";

const settings: SourceSettings = { idleTimeout: 10_000, maxLag: 30_000, maxSources: 1000 };

function partition(s: Partial<SourceSettings> = {}): WatermarkTracker {
  const t = new WatermarkTracker();
  t.addChannel("p", 0, 10_000, 0, { ...settings, ...s });
  return t;
}

test("a partition's watermark is the minimum over its sources: one source read ahead does not run away with it", () => {
  const t = partition();
  t.observe("p", 1_000, 0, "host-a");
  t.observe("p", 1_000, 0, "host-b");
  assert.equal(t.watermark, 999);
  for (let ts = 2_000; ts <= 20_000; ts += 1_000) t.observe("p", ts, 1, "host-a");
  assert.equal(t.watermark, 999, "host-b still holds it");
  t.observe("p", 5_000, 2, "host-b");
  assert.equal(t.watermark, 4_999);
  t.observe("p", 25_000, 3, "host-b");
  assert.equal(t.watermark, 19_999, "host-a holds it now");
});

test("records without a source are one source: the partition's newest record minus out-of-orderness, as before", () => {
  const t = new WatermarkTracker();
  t.addChannel("p", 2_000, 10_000, 0, settings);
  t.observe("p", 10_000, 0);
  t.observe("p", 9_000, 0);
  assert.equal(t.watermark, 7_999);
  t.observe("p", 12_000, 0, NO_SOURCE);
  assert.equal(t.watermark, 9_999);
  assert.deepEqual(
    t.sources().map((s) => [s.source, s.status, s.records]),
    [["", "active", 3]],
  );
});

test("a silent source stops holding its partition after sourceIdleTimeout of wall clock, and holds again when it speaks", () => {
  const t = partition();
  t.observe("p", 1_000, 0, "a");
  t.observe("p", 1_000, 0, "b");
  t.observe("p", 8_000, 5_000, "a");
  assert.equal(t.watermark, 999);
  assert.equal(t.tick(9_999), false, "b spoke 9.999 s ago");
  assert.equal(t.tick(10_000), true);
  assert.equal(t.watermark, 7_999, "b is idle: a alone decides");
  assert.equal(t.sources().find((s) => s.source === "b")?.status, "idle");
  t.observe("p", 9_000, 10_001, "a");
  assert.equal(t.watermark, 8_999);
  // b comes back behind: the watermark never falls, but b holds it until b passes it.
  t.observe("p", 6_000, 10_002, "b");
  assert.equal(t.sources().find((s) => s.source === "b")?.behind, 1, "its record is behind the watermark");
  t.observe("p", 12_000, 10_003, "a");
  assert.equal(t.watermark, 8_999, "b holds it");
  t.observe("p", 11_000, 10_004, "b");
  assert.equal(t.watermark, 10_999);
});

test("a source holds its partition at most maxSourceLag behind the most advanced one: the hold is bounded", () => {
  const t = partition({ maxLag: 30_000 });
  t.observe("p", 1_000, 0, "slow");
  t.observe("p", 1_000, 0, "fast");
  t.observe("p", 31_000, 0, "fast");
  assert.equal(t.watermark, 999, "30 s behind: still holding");
  t.observe("p", 31_002, 0, "fast");
  assert.equal(t.watermark, 1_001, "the watermark follows the fastest source, 30 s behind it");
  const slow = t.sources().find((s) => s.source === "slow");
  assert.equal(slow?.status, "lagging");
  assert.equal(slow?.lagMs, 30_002);
  t.observe("p", 60_000, 0, "fast");
  assert.equal(t.watermark, 29_999);
  t.observe("p", 2_000, 0, "slow");
  assert.equal(t.sources().find((s) => s.source === "slow")?.behind, 1, "counted: behind the watermark");
  // Back within the bound, it holds again (from where the watermark is: it never falls).
  t.observe("p", 40_000, 0, "slow");
  assert.equal(t.sources().find((s) => s.source === "slow")?.status, "active");
  t.observe("p", 65_000, 0, "fast");
  assert.equal(t.watermark, 39_999, "slow holds it again");
  t.observe("p", 80_000, 0, "fast");
  assert.equal(t.watermark, 49_999, "and at most 30 s behind the fastest");
});

test("a producer inventing a source per record costs at most maxSources entries: idle ones are forgotten first, then records count as the partition's own", () => {
  const t = partition({ maxSources: 10, idleTimeout: 1_000 });
  for (let i = 0; i < 10; i++) t.observe("p", 1_000 + i, 0, `s${i}`);
  assert.equal(t.sourceCounts().tracked, 10);
  for (let i = 10; i < 1_000; i++) t.observe("p", 2_000 + i, 1, `s${i}`);
  assert.deepEqual(t.sourceCounts(), { tracked: 11, overflow: 990, forgotten: 0 });
  assert.equal(t.sources().find((s) => s.source === NO_SOURCE)?.records, 990);
  t.tick(2_000); // all idle
  for (let i = 1_000; i < 1_005; i++) t.observe("p", 5_000 + i, 2_001, `s${i}`);
  assert.deepEqual(t.sourceCounts(), { tracked: 11, overflow: 990, forgotten: 5 });
  // Forgotten after 5 minutes idle, whatever the cap.
  t.tick(2_001 + 5 * 60_000);
  assert.equal(t.sourceCounts().tracked, 5);
});

test("a checkpoint keeps each source's newest record and idleness: the restored task holds as the old one did", () => {
  const t = partition();
  t.observe("p", 1_000, 0, "a");
  t.observe("p", 5_000, 0, "b");
  t.observe("p", 3_000, 0, "c");
  t.observe("p", 6_000, 9_000, "b");
  t.observe("p", 7_000, 9_000, "c");
  t.tick(10_000); // a is idle, the partition is not
  assert.equal(t.watermark, 5_999);
  const state = JSON.parse(JSON.stringify(t.state()));
  const r = partition();
  r.restoreState(state, 50_000);
  assert.equal(r.watermark, 5_999);
  assert.deepEqual(
    r.sources().map((s) => [s.source, s.status]),
    [
      ["a", "idle"],
      ["b", "active"],
      ["c", "active"],
    ],
  );
  r.observe("p", 9_000, 50_001, "c");
  assert.equal(r.watermark, 5_999, "b holds it, as before the restore");
  r.observe("p", 2_000, 50_001, "a");
  r.observe("p", 9_000, 50_002, "b");
  assert.equal(r.watermark, 5_999, "a is back and holds it (the watermark never falls)");
  // A checkpoint from before sources existed restores as before.
  const old = partition();
  old.restoreState({ watermark: 100, streamTime: 200, channels: { p: 100 } }, 0);
  assert.equal(old.watermark, 100);
});

test("a partition that fell silent as a whole gets back the sources it had: the first to resume does not run ahead", () => {
  const t = partition();
  t.observe("p", 1_000, 0, "a");
  t.observe("p", 1_000, 0, "b");
  t.observe("p", 2_000, 1_000, "a");
  t.observe("p", 2_000, 1_000, "b");
  t.tick(60_000); // both silent: the partition is idle (caught up), its sources too
  assert.deepEqual(
    t.sources().map((s) => s.status),
    ["idle", "idle"],
  );
  t.observe("p", 9_000, 60_001, "a"); // the shipper is back: a's backlog first
  assert.equal(t.watermark, 1_999, "b holds it: it was active when the partition fell silent");
  t.observe("p", 3_000, 60_002, "b");
  assert.equal(t.watermark, 2_999);
  t.observe("p", 9_500, 65_000, "a");
  t.tick(70_002); // b speaks no more: idle again, a alone decides
  assert.equal(t.watermark, 9_499);
});

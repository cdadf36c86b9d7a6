import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { readTruth, scoreQuality } from "./quality.ts";

const truth = [
  { kind: "run", seed: 1 },
  {
    kind: "fraud",
    id: "fraud-1",
    campaign: "coin_brushing",
    entities: { uid: [1, 2, 3, 4], streamer: [900], device: ["d-ring"] },
  },
  { kind: "positives", category: "emulator", entity: "device", ids: ["d-emu-1", "d-emu-2"], why: "" },
  {
    kind: "lookalike",
    id: "l-1",
    look: "whale_one_card",
    category: "coin_brushing",
    entities: { uid: [50, 51], streamer: [901] },
  },
  {
    kind: "lookalike",
    id: "l-2",
    look: "cheap_device",
    category: "emulator",
    entities: { device: ["d-tab", "d-emu-2"] },
  },
  { kind: "dirty", stream: "x", line: 1 },
]
  .map((r) => JSON.stringify(r))
  .join("\n");

let n = 0;
function signal(ruleId: string, type: string, id: string | number, shadow = false): RiskSignal {
  return {
    id: `s${n++}`,
    ts: 0,
    ruleId,
    ruleVersion: 1,
    severity: "HIGH",
    score: 50,
    action: "REVIEW",
    shadow,
    entity: { type, id: String(id) },
    evidence: { explanation: "", matched: {}, counts: {}, windowStart: null, windowEnd: null, sourceEventIds: [] },
  } as unknown as RiskSignal;
}

const categoryOf = new Map([
  ["cb.cards", "coin_brushing"],
  ["cb.streamer", "coin_brushing"],
  ["emu.score", "emulator"],
]);

describe("scoreQuality", () => {
  it("scores per category: flagged by type, precision over every type, recall on the category's entity, look-alikes by look", () => {
    const scores = scoreQuality(
      [
        signal("cb.cards", "USER", 1),
        signal("cb.cards", "USER", 1), // the same entity twice counts once
        signal("cb.cards", "USER", 2),
        signal("cb.cards", "USER", 3),
        signal("cb.cards", "USER", 50), // a whale
        signal("cb.streamer", "STREAMER", 900),
        signal("cb.streamer", "STREAMER", 777), // nobody's
        signal("cb.cards", "USER", 4, true), // shadow: not acted on, not scored
        signal("emu.score", "DEVICE", "d-emu-1"),
        signal("emu.score", "DEVICE", "d-tab"),
        signal("unknown.rule", "DEVICE", "d-emu-2"),
      ],
      categoryOf,
      truth,
    );
    const cb = scores.find((s) => s.category === "coin_brushing");
    assert.ok(cb);
    assert.deepEqual(cb.flaggedByType, { USER: 4, STREAMER: 2 });
    assert.equal(cb.flagged, 6);
    assert.equal(cb.right, 4);
    assert.equal(cb.precision, 4 / 6);
    assert.equal(cb.truth, 4);
    assert.equal(cb.found, 3);
    assert.equal(cb.recall, 3 / 4);
    assert.equal(cb.lookalikesFlagged, 1);
    assert.equal(cb.otherWrong, 1);
    assert.deepEqual(cb.lookalikes, [{ look: "whale_one_card", flagged: 1, of: 3 }]);

    const emu = scores.find((s) => s.category === "emulator");
    assert.ok(emu);
    assert.equal(emu.entity, "device");
    assert.equal(emu.precision, 1 / 2);
    assert.equal(emu.recall, 1 / 2);
    assert.equal(emu.lookalikesFlagged, 1);

    const spam = scores.find((s) => s.category === "spam");
    assert.ok(spam);
    assert.equal(spam.flagged, 0);
    assert.equal(spam.precision, null);
    assert.equal(spam.recall, null);
  });

  it("an entity both a positive and a look-alike counts as a positive", () => {
    const t = readTruth(truth).get("emulator");
    assert.ok(t);
    assert.equal(t.looks.get("cheap_device")?.get("device")?.has("d-emu-2"), false);
    assert.equal(t.looks.get("cheap_device")?.get("device")?.has("d-tab"), true);
  });
});

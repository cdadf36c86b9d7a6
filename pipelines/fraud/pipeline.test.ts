import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fraudGrace } from "./pipeline.ts";

describe("WEIR_FRAUD_GRACE", () => {
  it("is 0 unless set, a duration up to a day when set", () => {
    assert.equal(fraudGrace({}), 0);
    assert.equal(fraudGrace({ WEIR_FRAUD_GRACE: "" }), 0);
    assert.equal(fraudGrace({ WEIR_FRAUD_GRACE: "0" }), 0);
    assert.equal(fraudGrace({ WEIR_FRAUD_GRACE: "90s" }), 90_000);
    assert.equal(fraudGrace({ WEIR_FRAUD_GRACE: " 10m " }), 600_000);
    assert.equal(fraudGrace({ WEIR_FRAUD_GRACE: "24h" }), 86_400_000);
  });

  it("refuses what is not a duration, or more than a day, naming the variable", () => {
    for (const bad of ["10", "-5m", "2d", "soon", "1e9s"])
      assert.throws(() => fraudGrace({ WEIR_FRAUD_GRACE: bad }), /WEIR_FRAUD_GRACE=.* is not a duration from 0 to 24h/);
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { SpaceSaving } from "./space-saving.ts";

test("Space-Saving: counts never under the truth, count - error never over it, counts sum to the stream", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 1500 }),
      (m, stream) => {
        const ss = new SpaceSaving<number>(m);
        const exact = new Map<number, number>();
        for (const key of stream) {
          ss.add(key);
          exact.set(key, (exact.get(key) ?? 0) + 1);
        }
        const all = ss.top(m);
        assert.equal(
          all.reduce((n, e) => n + e.count, 0),
          stream.length,
        );
        for (const e of all) {
          const n = exact.get(e.key) ?? 0;
          assert.ok(e.count >= n && e.count - e.error <= n, `${e.key}: ${e.count} - ${e.error} vs ${n}`);
        }
        // With a counter per key it is exact.
        if (exact.size <= m) for (const e of all) assert.equal(e.count, exact.get(e.key));
      },
    ),
    { seed: 5, numRuns: 300 },
  );
});

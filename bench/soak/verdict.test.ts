import assert from "node:assert/strict";
import { test } from "node:test";
import { lagVerdict, leastSquares, type Point, rssVerdict, steady, warmupFor } from "./verdict.ts";

const series = (n: number, f: (t: number) => number, every = 10): Point[] =>
  Array.from({ length: n }, (_, i) => ({ t: i * every, v: f(i * every) }));

test("leastSquares recovers a line, and is flat for one time or none", () => {
  const l = leastSquares(series(50, (t) => 3 * t + 7));
  assert.ok(Math.abs(l.slope - 3) < 1e-9);
  assert.ok(Math.abs(l.intercept - 7) < 1e-9);
  assert.deepEqual(leastSquares([]), { slope: 0, intercept: 0 });
  assert.equal(
    leastSquares([
      { t: 5, v: 1 },
      { t: 5, v: 9 },
    ]).slope,
    0,
  );
});

test("the warm-up is a fifth of the run, at most 5 minutes, and steady() drops it", () => {
  assert.equal(warmupFor(90), 18);
  assert.equal(warmupFor(1800), 300);
  assert.deepEqual(
    steady(
      series(5, () => 1),
      20,
    ).map((p) => p.t),
    [20, 30, 40],
  );
});

test("RSS: a saw-tooth heap with a flat ceiling is bounded; a rising ceiling is not", () => {
  const MiB = 1048576;
  // GC saw: 200..260 MiB every minute, for 30 minutes, sampled every 10 s.
  const saw = series(180, (t) => (200 + ((t % 60) / 60) * 60) * MiB);
  const flat = rssVerdict(saw, 300, 0.2);
  assert.equal(flat.ok, true, flat.why);
  assert.ok(Math.abs(flat.growth) < 0.01);
  // The same saw over a leak of 1 MiB a minute over the steady 25 minutes: ceiling +9% in the last third vs the first.
  const slow = rssVerdict(
    series(180, (t) => (200 + ((t % 60) / 60) * 60 + t / 60) * MiB),
    300,
    0.2,
  );
  assert.equal(slow.ok, true, `a slow climb within the tolerance: ${slow.why}`);
  const leak = rssVerdict(
    series(180, (t) => (200 + ((t % 60) / 60) * 60 + (t / 60) * 5) * MiB),
    300,
    0.2,
  );
  assert.equal(leak.ok, false, leak.why);
  assert.ok(leak.lastMax > leak.firstMax);
  assert.match(leak.why, /above the first third's \(limit 20\.0%\)/);
});

test("RSS: the warm-up's climb is not judged; too few samples is a failure, not a pass", () => {
  const MiB = 1048576;
  // Climbs from 50 to 250 MiB in the first 5 minutes of 12, then stays.
  const warm = series(72, (t) => Math.min(250, 50 + (t / 300) * 200) * MiB);
  assert.equal(rssVerdict(warm, 300, 0.2).ok, true);
  assert.equal(rssVerdict(warm, 0, 0.2).ok, false, "judged from the start, the climb is growth");
  const few = rssVerdict(
    series(2, () => MiB),
    0,
    0.2,
  );
  assert.equal(few.ok, false);
  assert.match(few.why, /too few/);
  // A process that died reads 0: those samples are not a fall in memory.
  const gone = rssVerdict(
    series(30, (t) => (t < 200 ? 100 * MiB : 0)),
    0,
    0.2,
  );
  assert.equal(gone.lastMax, 100 * MiB);
});

test("lag: a commit-interval saw around a level is not growth; a backlog that builds is", () => {
  // 2,000 records/s, committed every 5 s: lag saws 0..10,000.
  const saw = series(180, (t) => ((t * 7) % 5) * 2000);
  const ok = lagVerdict(saw, 300, 2000, { inputSeconds: 5, floor: 1000 });
  assert.equal(ok.ok, true, ok.why);
  assert.equal(ok.limit, 10_000);
  // Processing at 99% of the input: 20 records/s more lag, 30,000 over 25 minutes.
  const behind = lagVerdict(
    series(180, (t) => 20 * t),
    300,
    2000,
    { inputSeconds: 5, floor: 1000 },
  );
  assert.equal(behind.ok, false, behind.why);
  assert.ok(Math.abs(behind.slope - 20) < 1e-9);
  assert.ok(Math.abs(behind.rise - 20 * 1490) < 1e-6);
  // A quiet group gets the floor.
  assert.equal(lagVerdict(saw, 300, 1, { inputSeconds: 5, floor: 1000 }).limit, 1000);
  // A backlog being worked off is a falling line: fine.
  const catching = lagVerdict(
    series(180, (t) => Math.max(0, 50_000 - 40 * t)),
    300,
    2000,
    { inputSeconds: 5, floor: 1000 },
  );
  assert.equal(catching.ok, true, catching.why);
  assert.match(catching.why, /falls/);
  assert.equal(lagVerdict([], 0, 1, { inputSeconds: 5, floor: 1000 }).ok, false);
});

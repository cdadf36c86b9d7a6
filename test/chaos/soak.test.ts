// The soak's CI subset: the same run and checks as `npm run soak -- --minutes 30` (bench/soak/),
// bounded to 90 s of traffic (WEIR_SOAK_MINUTES changes it): the simulator, weir ship, the health,
// logs, fraud and hot-key pipelines and the console as processes on names of their own; nothing lost
// after the drain, every process up and stopping cleanly, RSS bounded and lag not growing over the
// steady part. Its report goes to a temporary folder, printed at the end.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { soakMarkdown, soakSvg } from "../../bench/soak/report.ts";
import { runSoak, SOAK_DEFAULTS } from "../../bench/soak/soak.ts";

const minutes = Number(process.env.WEIR_SOAK_MINUTES ?? 1.5);
// Not in `npm test` yet: it has not passed on a quiet machine (its first runs were on a machine at
// load 30, where the pipelines fell behind). `npm run test:chaos` runs it.
const skip = process.env.WEIR_CHAOS_SOAK === "1" ? false : "runs in npm run test:chaos (WEIR_CHAOS_SOAK=1)";

test(`a ${minutes}-minute soak of the main job: nothing lost, RSS bounded, lag not growing`, { skip }, async () => {
  const result = await runSoak({
    ...SOAK_DEFAULTS,
    minutes,
    sampleSeconds: 5,
    drainSeconds: 150,
    log: (line) => console.log(`# ${line}`),
  });
  const dir = mkdtempSync(join(tmpdir(), "weir-soak-report-"));
  writeFileSync(join(dir, "soak.svg"), soakSvg(result));
  writeFileSync(join(dir, "soak.md"), soakMarkdown(result, "node --test test/chaos/soak.test.ts", "soak.svg"));
  console.log(`# report: ${join(dir, "soak.md")}`);
  assert.ok(result.records > minutes * 60 * SOAK_DEFAULTS.rate * 0.5, `${result.records} records written`);
  assert.deepEqual(
    result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
    [],
  );
});

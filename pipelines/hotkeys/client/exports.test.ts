// `weir/hotkeys` and `weir/counters` as a service depending on weir imports them: from a project of
// its own whose node_modules holds weir, run under tsx.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

test("a Node service imports weir/hotkeys and weir/counters through package.json's exports", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-service-"));
  try {
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(ROOT, join(dir, "node_modules", "weir"));
    symlinkSync(join(ROOT, "node_modules", "tsx"), join(dir, "node_modules", "tsx"));
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
    writeFileSync(
      join(dir, "service.ts"),
      `import { HotKeysClient, CounterBuffer } from "weir/hotkeys";
import { CounterBuffer as Same } from "weir/counters";
const hot = new HotKeysClient({ url: "http://127.0.0.1:9", thresholds: { room: { window: "1m", count: 10 } } });
console.log(JSON.stringify({ client: typeof HotKeysClient, buffer: Same === CounterBuffer, hot: hot.isHot("room", 7) }));
`,
    );
    const r = spawnSync(process.execPath, ["--import", "tsx", "service.ts"], {
      cwd: dir,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { client: "function", buffer: true, hot: false });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

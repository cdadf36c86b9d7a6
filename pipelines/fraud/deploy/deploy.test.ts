import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { compileSnapshot } from "../pipeline.ts";
import { compileRuleSet } from "../rules/compile.ts";
import type { RuleSetPlan } from "../rules/plan.ts";
import { BundleError, folderFiles, packBundle, unpackBundle } from "./bundle.ts";
import { diffSnapshots, snapshotOf } from "./deploy.ts";

const REPO_RULES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "rules");
const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "weir-deploy-"));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function copyOfRepoRules(): string {
  const d = temp();
  cpSync(REPO_RULES, d, { recursive: true });
  return d;
}

describe("a deployed snapshot", () => {
  it("compiles on a worker to the version weir rules check gives the folder", () => {
    const plan = compileRuleSet(REPO_RULES).plan as RuleSetPlan;
    const s = snapshotOf(REPO_RULES, plan, "fraud", "tests");
    const r = compileSnapshot(s, join(temp(), "worker"));
    assert.equal(r.error, undefined);
    assert.equal(r.plan?.version, plan.version);
    assert.deepEqual(
      r.plan?.rules.map((x) => x.fingerprint),
      plan.rules.map((x) => x.fingerprint),
    );
  });

  it("is refused by a worker when its files do not compile, or are not what its version says", () => {
    const dir = copyOfRepoRules();
    const good = compileRuleSet(dir).plan as RuleSetPlan;
    const s = snapshotOf(dir, good, "fraud", "tests");
    const file = join(dir, "examples", "windows.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("cards_24h >= 4", "cards_24h >= "));
    const broken = { ...s, bundle: packBundle(folderFiles(dir)) };
    assert.match(compileSnapshot(broken, join(temp(), "w")).error ?? "", /problem\(s\): .*windows\.yaml:\d+:\d+: /);
    const other = { ...s, version: "000000000000" };
    assert.match(compileSnapshot(other, join(temp(), "w")).error ?? "", /compile to version .*, not the 000000000000/);
  });

  it("refuses a bundle that names files outside its folder, or inflates past the limit", () => {
    const evil = (path: string) => {
      const p = Buffer.from(path);
      const head = Buffer.alloc(2 + p.length + 4);
      head.writeUInt16BE(p.length, 0);
      p.copy(head, 2);
      head.writeUInt32BE(1, 2 + p.length);
      return gzipSync(Buffer.concat([head, Buffer.from("x")]));
    };
    for (const path of ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a\\b"])
      assert.throws(() => unpackBundle(evil(path)), BundleError, path);
    assert.throws(() => unpackBundle(Buffer.from("not gzip")), /does not inflate/);
    assert.throws(() => unpackBundle(gzipSync(Buffer.from([0, 5, 0x61]))), /truncated/);
    assert.deepEqual(
      unpackBundle(packBundle([{ path: "a/b.yaml", bytes: Buffer.from("rules: []") }])).map((f) => f.path),
      ["a/b.yaml"],
    );
  });
});

describe("deploy's comparison with the deployed snapshot", () => {
  it("says which rules are added, removed, changed with their state kept or fresh, and refuses a change without a new version", () => {
    const dir = copyOfRepoRules();
    const before = snapshotOf(dir, compileRuleSet(dir).plan as RuleSetPlan, "fraud", "t");
    const file = join(dir, "examples", "windows.yaml");
    let text = readFileSync(file, "utf8");
    // many_cards: a new threshold (its state is kept) and a new version
    text = text
      .replace("cards_24h >= 4", "cards_24h >= 5")
      .replace(/(id: example\.coin_brushing\.many_cards\n\s+version: )1/, "$12");
    // accounts_per_device: a new window (its state starts empty), same version
    text = text.replace("by: event.deviceId, within: 1h", "by: event.deviceId, within: 2h");
    // follow_burst promoted from shadow: neither a new version nor new state
    text = text.replace(/(id: example\.fake_followers\.follow_burst[\s\S]*?status: )shadow/, "$1active");
    writeFileSync(file, text);
    const plan = compileRuleSet(dir).plan as RuleSetPlan;
    const diff = diffSnapshots(before, snapshotOf(dir, plan, "fraud", "t"));
    const of = (id: string) => diff.changes.find((c) => c.id === id);
    assert.deepEqual(of("example.coin_brushing.many_cards"), {
      id: "example.coin_brushing.many_cards",
      change: "changed",
      from: 1,
      to: 2,
      state: "kept",
      status: "active",
    });
    assert.equal(of("example.emulator.accounts_per_device")?.state, "fresh");
    assert.equal(of("example.fake_followers.follow_burst")?.change, "changed");
    assert.equal(of("example.fake_followers.follow_burst")?.state, "kept");
    assert.deepEqual(diff.unbumped, ["example.emulator.accounts_per_device"]);
    assert.equal(of("example.spam.contact_in_chat")?.change, "unchanged");
    const none = diffSnapshots(null, snapshotOf(dir, plan, "fraud", "t"));
    assert.ok(none.changes.every((c) => c.change === "added"));
  });
});

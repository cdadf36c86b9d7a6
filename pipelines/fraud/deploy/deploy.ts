// `weir rules deploy`: a rules folder compiled as one snapshot (nothing with a problem is deployed),
// compared with the snapshot deployed now, and published to rules.snapshots for every worker.
//
// The comparison says, rule by rule, what a switch does: added, removed, changed with its state kept
// (its key, window and counted events are the same: its state fingerprint did not change) or started
// fresh. A rule that changed without a new version is refused: signals carry the rule's version, and
// two different rules under one version would make an explanation lie.
import type { RuleSnapshot, SnapshotRule } from "../../../schemas/types.generated.ts";
import type { RuleSetPlan } from "../rules/plan.ts";
import { folderFiles, packBundle } from "./bundle.ts";

export interface RuleChange {
  id: string;
  change: "added" | "removed" | "changed" | "unchanged";
  from?: number;
  to?: number;
  /** For a changed rule: whether its state carries over to the new snapshot. */
  state?: "kept" | "fresh";
  /** The status it has in the new snapshot (or had, removed). */
  status: string;
}

export interface SnapshotDiff {
  changes: RuleChange[];
  /** Rules whose definition changed while their version did not. */
  unbumped: string[];
}

/** The snapshot of a compiled folder, ready to publish. */
export function snapshotOf(dir: string, plan: RuleSetPlan, app: string, deployedBy: string): RuleSnapshot {
  return {
    app,
    version: plan.version,
    deployedAt: Date.now(),
    deployedBy,
    source: dir,
    rules: plan.rules.map(
      (r): SnapshotRule => ({
        id: r.id,
        version: r.version,
        category: r.category,
        status: r.status,
        fingerprint: r.fingerprint,
        stateFingerprint: r.stateFingerprint,
        replaces: r.replaces ?? null,
      }),
    ),
    bundle: packBundle(folderFiles(dir)),
  };
}

export function diffSnapshots(before: RuleSnapshot | null, after: RuleSnapshot): SnapshotDiff {
  const old = new Map((before?.rules ?? []).map((r) => [r.id, r]));
  const changes: RuleChange[] = [];
  const unbumped: string[] = [];
  for (const r of after.rules) {
    const o = old.get(r.id);
    old.delete(r.id);
    if (!o) {
      changes.push({ id: r.id, change: "added", to: r.version, status: r.status });
      continue;
    }
    if (o.fingerprint === r.fingerprint && o.status === r.status) {
      changes.push({ id: r.id, change: "unchanged", from: o.version, to: r.version, status: r.status });
      continue;
    }
    if (o.fingerprint !== r.fingerprint && o.version === r.version) unbumped.push(r.id);
    changes.push({
      id: r.id,
      change: "changed",
      from: o.version,
      to: r.version,
      state: o.stateFingerprint === r.stateFingerprint ? "kept" : "fresh",
      status: r.status,
    });
  }
  for (const o of old.values()) changes.push({ id: o.id, change: "removed", from: o.version, status: o.status });
  return { changes, unbumped };
}

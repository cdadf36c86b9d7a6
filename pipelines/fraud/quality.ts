// How good a rule set's signals are, per fraud category, against a simulator run's ground truth
// (`weir rules score`, and the demo's per-category precision). Per category:
// - flagged: the distinct entities its rules' signals named, by type (USER, DEVICE, STREAMER, ...);
// - precision: the share of them the truth names as that category's (a campaign of the category,
//   or its `positives`: every emulator, every rooted phone, every farm account with a virtual number);
// - recall: the share of the category's entities in truth (users, or devices for emulator and
//   root_jailbreak) that were flagged;
// - look-alikes: the genuine entities that look like the category's fraud (whales, a campus NAT,
//   cheap tablets, busybox ROMs, a number given once) that were flagged anyway, by look.
import { readFileSync } from "node:fs";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CAMPAIGN_CATEGORY } from "./backtest.ts";

/** The truth's entity kinds and the signal entity types they match. */
const KIND_OF_TYPE: Record<string, string> = { USER: "uid", DEVICE: "device", STREAMER: "streamer" };

export interface LookalikeFlagged {
  look: string;
  flagged: number;
  of: number;
}

export interface CategoryQuality {
  category: string;
  /** The entity recall is measured on. */
  entity: "uid" | "device";
  flagged: number;
  flaggedByType: Record<string, number>;
  right: number;
  precision: number | null;
  truth: number;
  found: number;
  recall: number | null;
  /** Flagged entities the truth names as genuine look-alikes of this category. */
  lookalikesFlagged: number;
  lookalikes: LookalikeFlagged[];
  /** Flagged entities neither in the category's truth nor look-alikes (ordinary users, other campaigns). */
  otherWrong: number;
}

type EntitySets = Map<string, Set<string>>; // kind (uid, device, streamer) -> ids

interface CategoryTruth {
  positives: EntitySets;
  looks: Map<string, EntitySets>;
}

/** A ground truth (ground-truth.jsonl's text) as positives and look-alikes per category. */
export function readTruth(text: string): Map<string, CategoryTruth> {
  const out = new Map<string, CategoryTruth>();
  const of = (category: string) => {
    let t = out.get(category);
    if (!t) {
      t = { positives: new Map(), looks: new Map() };
      out.set(category, t);
    }
    return t;
  };
  const add = (sets: EntitySets, kind: string, ids: Iterable<string | number>) => {
    let s = sets.get(kind);
    if (!s) {
      s = new Set();
      sets.set(kind, s);
    }
    for (const id of ids) s.add(String(id));
  };
  for (const line of text.split("\n")) {
    if (!/"kind":"(fraud|positives|lookalike)"/.test(line)) continue;
    const r = JSON.parse(line) as {
      kind: string;
      campaign?: string;
      category?: string;
      look?: string;
      entity?: string;
      ids?: Array<string | number>;
      entities?: Record<string, Array<string | number>>;
    };
    if (r.kind === "fraud") {
      const cat = CAMPAIGN_CATEGORY[r.campaign ?? ""];
      if (!cat) continue;
      const t = of(cat.category);
      for (const kind of ["uid", "device", "streamer"]) add(t.positives, kind, r.entities?.[kind] ?? []);
    } else if (r.kind === "positives" && r.category && r.entity) {
      add(of(r.category).positives, r.entity, r.ids ?? []);
    } else if (r.kind === "lookalike" && r.category && r.look) {
      const t = of(r.category);
      let sets = t.looks.get(r.look);
      if (!sets) {
        sets = new Map();
        t.looks.set(r.look, sets);
      }
      for (const kind of ["uid", "device", "streamer"]) add(sets, kind, r.entities?.[kind] ?? []);
    }
  }
  // An entity both a positive and a look-alike (a whale's favourite a brushing ring also aimed at) counts as a positive.
  for (const t of out.values())
    for (const sets of t.looks.values())
      for (const [kind, ids] of sets) for (const id of t.positives.get(kind) ?? []) ids.delete(id);
  return out;
}

/**
 * Precision, recall and look-alikes flagged per category, for signals of rules whose categories
 * `categoryOf` gives (rule id -> category), against the ground truth's text.
 */
export function scoreQuality(
  signals: readonly RiskSignal[],
  categoryOf: ReadonlyMap<string, string>,
  truthText: string,
): CategoryQuality[] {
  const truth = readTruth(truthText);
  const flaggedBy = new Map<string, Map<string, { type: string; id: string }>>();
  for (const s of signals) {
    if (s.shadow) continue;
    const category = categoryOf.get(s.ruleId);
    if (!category) continue;
    let m = flaggedBy.get(category);
    if (!m) {
      m = new Map();
      flaggedBy.set(category, m);
    }
    m.set(`${s.entity.type}:${s.entity.id}`, { type: s.entity.type, id: s.entity.id });
  }
  const out: CategoryQuality[] = [];
  const seen = new Set<string>();
  for (const { category, entity } of Object.values(CAMPAIGN_CATEGORY)) {
    if (seen.has(category)) continue;
    seen.add(category);
    const t = truth.get(category) ?? { positives: new Map(), looks: new Map() };
    const flagged = [...(flaggedBy.get(category)?.values() ?? [])];
    const byType: Record<string, number> = {};
    let right = 0;
    let lookalikesFlagged = 0;
    const found = new Set<string>();
    const lookCounts = new Map<string, number>();
    for (const f of flagged) {
      byType[f.type] = (byType[f.type] ?? 0) + 1;
      const kind = KIND_OF_TYPE[f.type];
      if (kind && t.positives.get(kind)?.has(f.id)) {
        right++;
        if (kind === entity) found.add(f.id);
        continue;
      }
      let look: string | undefined;
      for (const [name, sets] of t.looks) if (kind && sets.get(kind)?.has(f.id)) look = name;
      if (look) {
        lookalikesFlagged++;
        lookCounts.set(look, (lookCounts.get(look) ?? 0) + 1);
      }
    }
    const truthSize = t.positives.get(entity)?.size ?? 0;
    out.push({
      category,
      entity,
      flagged: flagged.length,
      flaggedByType: byType,
      right,
      precision: flagged.length > 0 ? right / flagged.length : null,
      truth: truthSize,
      found: found.size,
      recall: truthSize > 0 ? found.size / truthSize : null,
      lookalikesFlagged,
      lookalikes: [...t.looks].map(([look, sets]) => ({
        look,
        flagged: lookCounts.get(look) ?? 0,
        of: [...sets.values()].reduce((n, s) => n + s.size, 0),
      })),
      otherWrong: flagged.length - right - lookalikesFlagged,
    });
  }
  return out;
}

/** scoreQuality with the truth read from a file (a simulator run's ground-truth.jsonl). */
export function scoreQualityFromFile(
  signals: readonly RiskSignal[],
  categoryOf: ReadonlyMap<string, string>,
  truthFile: string,
): CategoryQuality[] {
  return scoreQuality(signals, categoryOf, readFileSync(truthFile, "utf8"));
}

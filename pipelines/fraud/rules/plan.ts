// The compiled rule set: what the stream operators run. Every expression is compiled, every window,
// span and cool-down is in milliseconds, every piece of state has its TTL and its caps. A plan is
// built from one snapshot of the rules folder and never changes; a new snapshot is a new plan.

import type { StreamName } from "../cel/environment.ts";
import type { CompiledExpression } from "../cel/expression.ts";
import type { NamedList } from "../lists/matchers.ts";
import type { ACTIONS, ENTITY_TYPES, SEVERITIES, STATUSES } from "./schema.ts";

/** Hard maxima a rule's own settings cannot exceed, and the defaults. */
export const STATE_LIMITS = {
  /** Keys one aggregate, sequence or absence holds; the least recently updated key goes first. */
  maxKeys: 1_000_000,
  /** Distinct values per key of a distinct_count (then it saturates, counted). */
  defaultMaxDistinct: 1000,
  /** Partial matches per key of a sequence. */
  defaultMaxPending: 16,
  /** Source event ids a signal carries. */
  maxSourceEvents: 20,
  /** Cool-down entries (rule, entity) kept. */
  maxCooldownEntries: 1_000_000,
};

/** How the enrichment tables are kept: the latest device report per deviceId, registration facts per uid. */
export const ENRICHMENT_LIMITS = {
  device: { ttlMs: 7 * 24 * 3600_000, maxEntries: 2_000_000 },
  registration: { ttlMs: 30 * 24 * 3600_000, maxEntries: 5_000_000 },
};

export type Severity = (typeof SEVERITIES)[number];
export type Action = (typeof ACTIONS)[number];
export type EntityType = (typeof ENTITY_TYPES)[number];
export type RuleStatus = (typeof STATUSES)[number];

export interface Located {
  file: string;
  line: number;
}

export interface AggregatePlan {
  name: string;
  fn: "count" | "sum" | "distinct_count";
  of?: CompiledExpression;
  by: CompiledExpression;
  where?: CompiledExpression;
  withinMs: number;
  maxDistinct: number;
  /** State lives until the window has passed the last update. */
  ttlMs: number;
  maxKeys: number;
}

export interface StepPlan {
  name: string;
  stream: StreamName;
  when: CompiledExpression;
  by: CompiledExpression;
  /** Fields of this step's event that later steps, the entity or the explanation read: all the state keeps. */
  captures: string[];
}

export type RuleShape =
  | { kind: "match"; stream: StreamName; when: CompiledExpression }
  | {
      kind: "aggregate";
      stream: StreamName;
      /** Which events may trigger the rule (and are counted, unless an aggregate has its own where). */
      when?: CompiledExpression;
      aggregates: AggregatePlan[];
      condition: CompiledExpression;
    }
  | { kind: "sequence"; maxspanMs: number; steps: StepPlan[]; maxPending: number; ttlMs: number; maxKeys: number }
  | {
      kind: "absence";
      withinMs: number;
      after: StepPlan;
      missing: StepPlan;
      ttlMs: number;
      maxKeys: number;
    };

export interface ExplanationPart {
  text?: string;
  expression?: CompiledExpression;
}

export interface RulePlan {
  id: string;
  version: number;
  category: string;
  owner: string;
  status: RuleStatus;
  severity: Severity;
  score: number;
  action: Action;
  description?: string;
  falsepositives: string[];
  replaces?: string;
  source: Located;
  entity: {
    type: EntityType;
    expression: CompiledExpression;
    /** PHONE and CARD ids leave the engine as keyed hashes, never in clear. */
    hashed: boolean;
  };
  explanation: ExplanationPart[];
  cooldownMs: number;
  shape: RuleShape;
  /** The streams whose events this rule reads. */
  streams: StreamName[];
  /** Enrichments the rule reads: events without them are not evaluated (counted per rule). */
  enrich: { device: boolean; registration: boolean };
  /** Field paths the rule reads, for the evidence; `pii` ones are masked there. */
  evidence: Array<{ path: string; pii: boolean }>;
  /** Macros the rule uses (directly or not) and lists it reads. */
  macros: string[];
  lists: string[];
  /** Changes when anything that decides the rule's state changes: an unchanged one keeps its state on reload. */
  stateFingerprint: string;
  /** Changes when anything about the rule changes. */
  fingerprint: string;
  fixtures: FixturePlan[];
}

export interface FixtureEventPlan {
  stream: StreamName;
  ts: number;
  record: Record<string, unknown>;
  line: number;
}

export interface FixturePlan {
  name: string;
  expect: "hit" | "no_hit";
  entity?: string;
  signals?: number;
  events: FixtureEventPlan[];
  line: number;
}

export interface ListInfo {
  name: string;
  kind: NamedList["kind"];
  size: number;
  source: string;
  file: string;
  sha256: string;
}

export interface RuleSetPlan {
  /** Content hash of every file of the snapshot (12 hex digits). */
  version: string;
  rules: RulePlan[];
  lists: ListInfo[];
  macros: string[];
  /** Streams any enabled rule reads, and whether the enrichment tables are needed. */
  streams: StreamName[];
  enrich: { device: boolean; registration: boolean };
  patterns: number;
}

/** Fields that hold personal data: masked in a signal's evidence. */
export const PII_FIELDS = new Set([
  "event.phone",
  "event.text",
  "event.ip",
  "event.clientIp",
  "device.ip",
  "registration.ip",
]);

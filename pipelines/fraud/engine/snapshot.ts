// A rule set as the pipeline's stages run it: each enabled rule placed in one stage, the rules of a
// stage indexed by stream and event type, and the routes events take from stage to stage. Built once
// per snapshot (a few milliseconds for thousands of rules); the stages read it for every event.
//
// The topology is fixed (topology.ts), whatever the rules; a snapshot only decides what runs where:
//
//   uid stage     events.behavior, events.coin (keyed by uid in their topics: no repartition) and
//                 logs.access; the registration table. Single-event rules that need no device report,
//                 and windows, sequences and absences keyed by event.uid over behavior and coin.
//   device stage  events.device (keyed by deviceId) and the events the uid stage sends it, by deviceId;
//                 the device table. Rules that read the device report or the device stream, and state
//                 keyed by event.deviceId.
//   keyed stage   everything keyed by anything else (a streamer, a room, a /24, a card, ...). Rules
//                 sharing a key expression share one record per event: an event goes there once per
//                 distinct key value, carrying the key expressions it is for.
//
// A key expression is identified by its syntax tree (not its spelling), hashed: `event.targetUid`
// and `event . targetUid` are one key, and the id stays the same across snapshots, so a rule kept
// from one snapshot to the next keeps finding its state in the same partition.
import { createHash } from "node:crypto";
import type { ASTNode } from "@marcbachmann/cel-js";
import type { StreamName } from "../cel/environment.ts";
import type { CompiledExpression } from "../cel/expression.ts";
import type { RulePlan, RuleSetPlan } from "../rules/plan.ts";
import { newCounters, type RuleCounters } from "./evaluate.ts";
import { allOf, anyOf, type TypeGuard, typeGuard } from "./guards.ts";

export type StageName = "uid" | "device" | "key";
export const STAGES: readonly StageName[] = ["uid", "device", "key"];

/** Streams whose events carry a `type` the index can use. */
const TYPED: ReadonlySet<StreamName> = new Set(["behavior", "coin"]);
/** Streams read by the uid stage (the rest, events.device, by the device stage). */
export const UID_STAGE_STREAMS: readonly StreamName[] = ["behavior", "coin", "access"];

/** One rule as its stage runs it. */
export interface RuleRun {
  rule: RulePlan;
  stage: StageName;
  /** The rule's state: its id and state fingerprint (null for single-event rules). */
  stateId: string | null;
  /** Per stream it reads: the id of its key expression, and the expression (stateful rules). */
  keys: Partial<Record<StreamName, { id: string; expression: CompiledExpression }>>;
  /** Per stream it reads: the event types it can act on (null: any). */
  guards: Partial<Record<StreamName, TypeGuard>>;
  /** The rule's counters: the engine's for its id once the snapshot runs (RuleEngine), looked up once, not per event. */
  counters: RuleCounters;
}

/** Rules (or anything) by event type: `get(type)` is every entry whose guard admits the type, in order. */
export class TypeIndex<T> {
  private readonly byType = new Map<string, T[]>();
  private readonly any: T[] = [];
  readonly size: number;

  constructor(entries: ReadonlyArray<[T, TypeGuard]>) {
    this.size = entries.length;
    const types = new Set<string>();
    for (const [, g] of entries) if (g) for (const t of g) types.add(t);
    for (const [item, g] of entries) if (g === null) this.any.push(item);
    for (const t of types) this.byType.set(t, []);
    for (const [item, g] of entries) {
      if (g === null) for (const list of this.byType.values()) list.push(item);
      else for (const t of g) this.byType.get(t)?.push(item);
    }
  }

  get(type: unknown): readonly T[] {
    return (typeof type === "string" ? this.byType.get(type) : undefined) ?? this.any;
  }
}

/** Where an event goes next for the keyed stage: one key expression. */
export interface KeyRoute {
  id: string;
  expression: CompiledExpression;
}

export interface RuntimeSnapshot {
  plan: RuleSetPlan;
  version: string;
  runs: RuleRun[];
  byId: Map<string, RulePlan>;
  /** The rules of the uid and device stages, per stream. */
  uid: Map<StreamName, TypeIndex<RuleRun>>;
  device: Map<StreamName, TypeIndex<RuleRun>>;
  /** The rules of the keyed stage, per stream and key id. */
  key: Map<StreamName, Map<string, TypeIndex<RuleRun>>>;
  /** Events the uid stage sends to the device stage (something there reads them), per stream. */
  uidToDevice: Map<StreamName, TypeIndex<true>>;
  /** Key expressions an event is sent to the keyed stage for, from the uid stage and from the device stage. */
  uidToKey: Map<StreamName, TypeIndex<KeyRoute>>;
  deviceToKey: Map<StreamName, TypeIndex<KeyRoute>>;
  /** Whether the tables are kept at all: a rule reads `device` / `registration`. */
  tables: { device: boolean; registration: boolean };
  /** Streams any rule reads. */
  streams: ReadonlySet<StreamName>;
}

const UID_KEY = keyId(fieldAst("uid"));
const DEVICE_KEY = keyId(fieldAst("deviceId"));

/** Places and indexes the enabled rules of a plan. */
export function runtimeSnapshot(plan: RuleSetPlan): RuntimeSnapshot {
  const runs = plan.rules.filter((r) => r.status !== "disabled").map(ruleRun);
  const streamsOf = (stage: StageName) => new Set(runs.filter((r) => r.stage === stage).flatMap((r) => r.rule.streams));
  const index = <T>(entries: Array<[T, TypeGuard]>) => new TypeIndex(entries);
  const perStream = (stage: StageName, pick: (r: RuleRun) => boolean = () => true) => {
    const out = new Map<StreamName, TypeIndex<RuleRun>>();
    for (const s of streamsOf(stage)) {
      out.set(
        s,
        index(
          runs
            .filter((r) => r.stage === stage && r.rule.streams.includes(s) && pick(r))
            .map((r) => [r, guardOf(r, s)] as [RuleRun, TypeGuard]),
        ),
      );
    }
    return out;
  };
  const key = new Map<StreamName, Map<string, TypeIndex<RuleRun>>>();
  for (const s of streamsOf("key")) {
    const byKey = new Map<string, Array<[RuleRun, TypeGuard]>>();
    for (const r of runs) {
      const k = r.keys[s];
      if (r.stage !== "key" || !k) continue;
      const list = byKey.get(k.id) ?? [];
      list.push([r, guardOf(r, s)]);
      byKey.set(k.id, list);
    }
    key.set(s, new Map([...byKey].map(([id, entries]) => [id, index(entries)])));
  }
  // The keyed stage hears of an event from the device stage when the rule reads the device report
  // or the event is a device report, else straight from the uid stage.
  const viaDevice = (r: RuleRun, s: StreamName) => s === "device" || r.rule.enrich.device;
  const keyRoutes = (fromDevice: boolean) => {
    const out = new Map<StreamName, TypeIndex<KeyRoute>>();
    for (const s of streamsOf("key")) {
      if (!fromDevice && s === "device") continue;
      const entries: Array<[KeyRoute, TypeGuard]> = [];
      const seen = new Map<string, [KeyRoute, TypeGuard]>();
      for (const r of runs) {
        const k = r.keys[s];
        if (r.stage !== "key" || !k || viaDevice(r, s) !== fromDevice) continue;
        const g = guardOf(r, s);
        const had = seen.get(k.id);
        if (had) had[1] = anyOf(had[1], g);
        else {
          const entry: [KeyRoute, TypeGuard] = [{ id: k.id, expression: k.expression }, g];
          seen.set(k.id, entry);
          entries.push(entry);
        }
      }
      if (entries.length > 0) out.set(s, index(entries));
    }
    return out;
  };
  const uidToDevice = new Map<StreamName, TypeIndex<true>>();
  for (const s of UID_STAGE_STREAMS) {
    const guards = runs
      .filter((r) => r.rule.streams.includes(s) && (r.stage === "device" || (r.stage === "key" && viaDevice(r, s))))
      .map((r) => guardOf(r, s));
    if (guards.length > 0) uidToDevice.set(s, index([[true, anyOf(...guards)]]));
  }
  const enabled = runs.map((r) => r.rule);
  return {
    plan,
    version: plan.version,
    runs,
    byId: new Map(plan.rules.map((r) => [r.id, r])),
    uid: perStream("uid"),
    device: perStream("device"),
    key,
    uidToDevice,
    uidToKey: keyRoutes(false),
    deviceToKey: keyRoutes(true),
    tables: {
      device: enabled.some((r) => r.enrich.device),
      registration: enabled.some((r) => r.enrich.registration),
    },
    streams: new Set(enabled.flatMap((r) => r.streams)),
  };
}

/**
 * The state id of a rule: its state fingerprint (what decides its state), so that rules whose state
 * means the same (thresholds of one window) share one, and a rule kept from one snapshot to the next
 * finds it. A sequence's state also holds what its later steps read of the earlier ones.
 */
export function stateIdOf(rule: RulePlan): string {
  const s = rule.shape;
  const captures = s.kind === "sequence" ? JSON.stringify(s.steps.map((st) => st.captures)) : "";
  return `state.${createHash("sha256").update(`${rule.stateFingerprint}|${captures}`).digest("base64url").slice(0, 16)}`;
}

function ruleRun(rule: RulePlan): RuleRun {
  const keys: RuleRun["keys"] = {};
  const guards: RuleRun["guards"] = {};
  const shape = rule.shape;
  switch (shape.kind) {
    case "match":
      guards[shape.stream] = typeGuardOf(shape.stream, shape.when);
      break;
    case "aggregate": {
      const agg = shape.aggregates[0];
      if (!agg) throw new Error(`rule ${rule.id}: an aggregate rule without its aggregate`);
      keys[shape.stream] = { id: keyId(agg.by.ast), expression: agg.by };
      guards[shape.stream] = allOf(
        shape.when ? typeGuardOf(shape.stream, shape.when) : null,
        agg.where ? typeGuardOf(shape.stream, agg.where) : null,
      );
      break;
    }
    case "sequence":
      for (const step of shape.steps) {
        keys[step.stream] = { id: keyId(step.by.ast), expression: step.by };
        const g = typeGuardOf(step.stream, step.when);
        guards[step.stream] = step.stream in guards ? anyOf(guards[step.stream] ?? null, g) : g;
      }
      break;
    case "absence":
      for (const step of [shape.after, shape.missing]) {
        keys[step.stream] = { id: keyId(step.by.ast), expression: step.by };
        const g = typeGuardOf(step.stream, step.when);
        guards[step.stream] = step.stream in guards ? anyOf(guards[step.stream] ?? null, g) : g;
      }
      break;
  }
  const stateId = shape.kind === "match" ? null : stateIdOf(rule);
  return { rule, stage: stageOf(rule, keys), stateId, keys, guards, counters: newCounters() };
}

function stageOf(rule: RulePlan, keys: RuleRun["keys"]): StageName {
  const onUidStreams = rule.streams.every((s) => s === "behavior" || s === "coin");
  if (rule.shape.kind === "match")
    return rule.streams.every((s) => s !== "device") && !rule.enrich.device ? "uid" : "device";
  const ids = rule.streams.map((s) => keys[s]?.id);
  if (onUidStreams && !rule.enrich.device && ids.every((id) => id === UID_KEY)) return "uid";
  if (ids.every((id) => id === DEVICE_KEY) && (!rule.enrich.registration || onUidStreams)) return "device";
  return "key";
}

function guardOf(r: RuleRun, s: StreamName): TypeGuard {
  return r.guards[s] ?? null;
}

function typeGuardOf(stream: StreamName, e: CompiledExpression): TypeGuard {
  return TYPED.has(stream) ? typeGuard(e.ast) : null;
}

/** A key expression's id: a hash of its syntax tree (operators and operands, no positions or types). */
export function keyId(ast: ASTNode): string {
  return createHash("sha256")
    .update(JSON.stringify(canonical(ast)))
    .digest("base64url")
    .slice(0, 12);
}

function canonical(n: unknown): unknown {
  if (Array.isArray(n)) return n.map(canonical);
  if (typeof n === "bigint") return `${n}n`;
  if (n !== null && typeof n === "object" && "op" in n) {
    const node = n as { op: unknown; args: unknown };
    return [node.op, canonical(node.args)];
  }
  return n;
}

function fieldAst(field: string): ASTNode {
  return { op: ".", args: [{ op: "id", args: "event" }, field] } as unknown as ASTNode;
}

/** Whether a rule's key on a stream is the uid stage's key (event.uid). */
export function isUidKey(id: string): boolean {
  return id === UID_KEY;
}

/** Whether a rule's key on a stream is the device stage's key (event.deviceId). */
export function isDeviceKey(id: string): boolean {
  return id === DEVICE_KEY;
}
